"""Evaluate definitions into observations, with timeouts, batches and isolation.

The entry points are here; the work is in the submodules, which import one
another one way, from the first to the last:

- `outcomes`: the Evaluation of one definition and its Outcome;
- `budget`: each definition's timeout, the scrape budget, what ran out of it;
- `slow`: which definitions are slow, served their last good value meanwhile;
- `work`: one task's work (a definition, or row counts sharing a statement);
- `isolation`: finding the slow member of a batch that overran, splitting it;
- `evaluator`: the Evaluator (cheap sources inline, the rest on worker
  threads), one per process.

Values not computed now come from `metricdemo.values`.
"""

from metricdemo.evaluation.budget import scrape_deadline, timeout_of
from metricdemo.evaluation.evaluator import (
    Evaluator,
    evaluate,
    evaluate_many,
    evaluate_posted,
    get_evaluator,
    serve_scheduled,
)
from metricdemo.evaluation.outcomes import Evaluation, Outcome
from metricdemo.evaluation.work import definition_key, evaluate_here

__all__ = [
    "Evaluation",
    "Evaluator",
    "Outcome",
    "definition_key",
    "evaluate",
    "evaluate_here",
    "evaluate_many",
    "evaluate_posted",
    "get_evaluator",
    "scrape_deadline",
    "serve_scheduled",
    "timeout_of",
]
