"""The callback registry: registration, decorator use, and refusals."""

import pytest

from metricdemo import register_callback, unregister_callback
from metricdemo.callbacks import get_callback, registered_callbacks
from tests.scraping import scrape, series


def test_register_as_decorator_returns_the_function():
    try:

        @register_callback("test.decorated", description="a test")
        def decorated():
            return 1

        assert decorated() == 1
        registered = get_callback("test.decorated")
        assert registered.func is decorated
        assert registered.label == "test.decorated (a test)"
        assert "test.decorated" in [c.name for c in registered_callbacks()]
    finally:
        unregister_callback("test.decorated")
    assert get_callback("test.decorated") is None


def counting_callback(calls: list[int]):
    """Return a new function object of the same code each time, as a re-import does."""

    def same():
        calls.append(1)
        return 1

    return same


@pytest.mark.django_db
def test_registering_the_same_function_twice_leaves_one_registration(client, define):
    """Registered again (one object, or the same code re-imported): still one of it.

    One registration, one series on /metrics, one call per scrape.
    """
    calls: list[int] = []
    first, reimported = counting_callback(calls), counting_callback(calls)
    try:
        register_callback("test.same", first)
        register_callback("test.same", first)
        register_callback("test.same", reimported)
        assert [c.name for c in registered_callbacks()].count("test.same") == 1
        assert get_callback("test.same").func is reimported
        define(name="same", source="callback", callback="test.same")
        assert series(scrape(client), "same") == {frozenset(): 1.0}
        assert calls == [1]
    finally:
        unregister_callback("test.same")


def test_a_different_function_under_a_taken_name_is_refused():
    register_callback("test.taken", lambda: 1)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_callback("test.taken", len)
    finally:
        unregister_callback("test.taken")


@pytest.mark.parametrize("name", ["", "has space", "1abc", "x" * 101, None])
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match="Invalid callback name"):
        register_callback(name, lambda: 1)


def test_two_lambdas_are_different_functions():
    register_callback("test.lambda", lambda: 1)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_callback("test.lambda", lambda: 2)
    finally:
        unregister_callback("test.lambda")


def test_non_callable_is_refused():
    with pytest.raises(ValueError, match="callable"):
        register_callback("test.nothing", 42)
