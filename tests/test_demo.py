"""The demo's groupby part: a shuffle of 10,000 partitions, and its values against plain Python."""

from hlg import demo
from hlg.execute.local import get


def test_demo_groupby_prints_its_layers_and_packed_size(capsys):
    demo.groupby_part()
    out = capsys.readouterr().out
    row = "shuffle  ShuffleLayer  hlg.shuffle    710,568  10,000 -> 10,000 partitions in 3 stages"
    assert row in out
    assert "in 3 stages of 22 groups" in out
    assert "730,568 tasks pack to" in out
    assert "partition 1: key 1: 27" in out


def test_demo_groupby_matches_plain_python():
    n = 37
    graph = demo.build_groupby(n)
    keys = [("sums", i) for i in range(n)]
    got = dict(pair for part in get(graph, keys, scheduler="sync") for pair in part)
    expected: dict[int, int] = {}
    for i in range(n):
        for key, value in demo.make_rows((i,)):
            expected[key] = expected.get(key, 0) + value
    assert got == expected
