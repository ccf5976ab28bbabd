"""The callback registry: registration, decorator use, and refusals."""

import pytest

from metricdemo import register_callback, unregister_callback
from metricdemo.callbacks import get_callback, registered_callbacks


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


def test_registering_the_same_function_twice_is_harmless():
    def same():
        return 1

    try:
        register_callback("test.same", same)
        register_callback("test.same", same)
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
