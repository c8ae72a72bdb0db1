"""A custom graph, dask style: load, clean, analyze, written as a dict and as layers.

Run: python examples/pipeline.py
"""

from operator import add

import hlg


def load(name: str) -> list[int]:
    return [len(name) * i for i in range(5)]


def clean(data: list[int]) -> list[int]:
    return [x for x in data if x % 2 == 0]


def analyze(parts: list[list[int]]) -> int:
    return sum(sum(p) for p in parts)


# 1. A plain dict of tuples, run directly.
dsk = {
    "load-1": (load, "a.data"),
    "load-2": (load, "bb.data"),
    "clean-1": (clean, "load-1"),
    "clean-2": (clean, "load-2"),
    "analyze": (analyze, ["clean-1", "clean-2"]),
    "offset": (hlg.apply, add, ["analyze", 100], {}),
}
print("dict graph:", hlg.get(dsk, ["analyze", "offset"]))

# 2. The same computation as layers, packed to bytes and unpacked as a scheduler would.
loads = hlg.HighLevelGraph.from_dict(
    {k: v for k, v in dsk.items() if k.startswith("load")}, name="load"
)
cleans = hlg.HighLevelGraph.from_collections(
    "clean", {k: v for k, v in dsk.items() if k.startswith("clean")}, [loads]
)
with hlg.annotate(priority=10):
    final = hlg.HighLevelGraph.from_collections("analyze", {"analyze": dsk["analyze"]}, [cleans])
final.validate()
data = hlg.pack(final, "analyze")
flat = hlg.unpack(data)
print(f"packed {len(data)} bytes; layers {[s.name for s in flat.layers]}")
print("priority annotations:", flat.annotations["priority"])
print("via bytes:", hlg.get(flat, "analyze"))
