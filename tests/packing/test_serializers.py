import pytest

import hlg
from hlg.packing import register_serializer
from hlg.serializers import dumps, loads
from hlg.task import Task


class Celsius:
    def __init__(self, degrees):
        self.degrees = degrees

    def __eq__(self, other):
        return isinstance(other, Celsius) and other.degrees == self.degrees


def read(x):
    return x


def test_a_registered_serializer_is_used_instead_of_pickle():
    register_serializer(Celsius, lambda c: c.degrees, Celsius, name="tests.celsius")
    assert dumps(Celsius(21.5)) == ("tests.celsius", 21.5)
    assert hlg.get(hlg.pack({"t": Task(read, Celsius(3))}, "t"), "t") == Celsius(3)


def test_an_unregistered_name_on_the_worker_is_a_clear_error():
    with pytest.raises(hlg.TaskExecutionError, match="no serializer 'nobody'"):
        loads("nobody", b"")


def test_the_pickle_name_is_reserved():
    with pytest.raises(hlg.UsageError, match="reserved"):
        register_serializer(Celsius, str, str, name="pickle")


def test_unpicklable_arguments_get_a_pack_error_saying_what_to_do():
    import threading

    with pytest.raises(hlg.PackError, match="register a serializer"):
        hlg.pack({"t": Task(read, threading.Lock())}, "t")


def test_registering_a_non_type_is_a_usage_error():
    with pytest.raises(hlg.UsageError, match="needs a type; got 'celsius'"):
        register_serializer("celsius", str, str)  # type: ignore[arg-type]
