"""The stage plan of a task shuffle, derived from a few integers.

A shuffle sends every row of ``n_in`` input partitions to one of ``n_out``
output partitions, its *destination*. Done in one step, every output combines
a piece of every input: ``n_in * n_out`` pieces. A multi-stage shuffle routes
rows one base-``k`` digit of their destination at a time instead, through a
grid of ``N = k ** S`` *positions*:

- stage ``s`` (``0 <= s < S``) routes digit ``e = S - 1 - s`` (the most
  significant first); its *divisor* is ``m = k ** e``, and a row with
  destination ``d`` goes to *group* ``(d // m) % k``;
- the *split* at position ``p`` cuts its data into ``k`` groups; the *piece*
  ``(p, j)`` is group ``j``; it moves to the *target* position: ``p`` with
  digit ``e`` replaced by ``j``;
- the *combine* at position ``t`` joins the pieces whose target is ``t``: one
  from each position that differs from ``t`` only in digit ``e``.

After the last stage every row is at the position equal to its destination.
Stage 0 reads input partition ``p`` at position ``p``; its combine at ``t``
takes the pieces of the inputs ``p < n_in`` with ``p % m == t % m``, and gets
none when ``t % m >= n_in`` (then the layer's *empty* partition stands in).
With one stage, ``k = n_out`` and ``m = 1``: every output combines a piece of
every input, the simple all-to-all shuffle.

**What is kept.** A shuffle culled to outputs ``O`` (a few ranges) needs, at
stage ``s``, the combines at the positions ``t`` with ``t // m`` in
``O // m``: whole blocks of ``m`` positions, so again ranges. Every output
needs every input, so every input is still split, but each split keeps only
the pieces bound for kept blocks. Every count below (tasks per stage and
role) is arithmetic on these ranges, never a walk over tasks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from hlg.errors import UsageError

__all__ = ["ShufflePlan", "plan_stages", "ranges_size"]

Ranges = tuple[tuple[int, int], ...]

# More stages than this would mean k < 2 somewhere: a plan never needs them.
MAX_STAGES = 64


def plan_stages(n: int, max_branch: int) -> int:
    """Return the fewest stages whose groups stay within ``max_branch``.

    Examples
    --------
    >>> plan_stages(100, 32), plan_stages(1_000, 32), plan_stages(10_000, 32), plan_stages(1, 32)
    (2, 2, 3, 1)
    """
    if type(max_branch) is not int or max_branch < 2:
        raise UsageError(f"max_branch must be an int >= 2; got {max_branch!r}")
    stages, reach = 1, max_branch
    while reach < n:
        stages += 1
        reach *= max_branch
    return stages


def nsplits_for(n: int, stages: int) -> int:
    """Return the smallest ``k`` with ``k ** stages >= n`` (exact integer arithmetic).

    Examples
    --------
    >>> nsplits_for(10_000, 3), nsplits_for(1_000, 2), nsplits_for(64, 3)
    (22, 32, 4)
    """
    k: int = max(1, round(float(n) ** (1.0 / stages)))
    while k**stages < n:
        k += 1
    while k > 1 and (k - 1) ** stages >= n:
        k -= 1
    return k


def ranges_size(ranges: Ranges) -> int:
    """Return how many integers ``ranges`` hold.

    Examples
    --------
    >>> ranges_size(((0, 3), (5, 6)))
    4
    """
    return sum(hi - lo for lo, hi in ranges)


def normalize_ranges(values: Sequence[tuple[int, int]]) -> Ranges:
    """Sort and merge ``[lo, hi)`` ranges, dropping empty ones.

    Examples
    --------
    >>> normalize_ranges([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)])
    ((0, 3), (5, 9))
    """
    out: list[list[int]] = []
    for lo, hi in sorted(r for r in values if r[0] < r[1]):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def ranges_of(values: Sequence[int]) -> Ranges:
    """Return sorted distinct ints as ``[lo, hi)`` runs.

    Examples
    --------
    >>> ranges_of([7, 1, 2, 3, 9, 8])
    ((1, 4), (7, 10))
    """
    out: list[list[int]] = []
    for v in sorted(set(values)):
        if out and v == out[-1][1]:
            out[-1][1] = v + 1
        else:
            out.append([v, v + 1])
    return tuple((lo, hi) for lo, hi in out)


def intersect_ranges(a: Ranges, b: Ranges) -> Ranges:
    """Return the integers in both ``a`` and ``b`` (each sorted and disjoint), as ranges.

    Examples
    --------
    >>> intersect_ranges(((0, 5), (8, 12)), ((3, 10),))
    ((3, 5), (8, 10))
    """
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _divide(ranges: Ranges, m: int) -> Ranges:
    # {v // m for v in ranges}, as ranges.
    if m == 1:
        return ranges
    return normalize_ranges([(lo // m, (hi - 1) // m + 1) for lo, hi in ranges])


def in_ranges(ranges: Ranges, value: int) -> bool:
    """Return whether ``value`` lies in one of ``ranges`` (sorted, disjoint).

    Examples
    --------
    >>> in_ranges(((0, 3), (5, 9)), 4), in_ranges(((0, 3), (5, 9)), 5)
    (False, True)
    """
    lo, hi = 0, len(ranges)
    while lo < hi:
        mid = (lo + hi) // 2
        if ranges[mid][1] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(ranges) and ranges[lo][0] <= value


@dataclasses.dataclass(frozen=True)
class ShufflePlan:
    """The stages, group counts and kept positions of a shuffle; see the module docstring.

    Parameters
    ----------
    n_in, n_out
        Input and output partitions.
    stages
        ``S``; with one stage, ``k = n_out``.
    outputs
        The kept output partitions as sorted, disjoint ``[lo, hi)`` ranges.

    Examples
    --------
    >>> plan = ShufflePlan(10, 10, 2, ((0, 10),))
    >>> plan.nsplits, [plan.divisor(s) for s in range(2)], plan.ntasks
    (4, [4, 1], 114)
    >>> plan.role_counts  # splits, pieces, combines before the last stage, outputs
    (22, 70, 12, 10)
    """

    n_in: int
    n_out: int
    stages: int
    outputs: Ranges
    # Derived from the fields above when the plan is made (a few integers per
    # stage), since every count and key of the layer asks for them.
    nsplits: int = dataclasses.field(init=False, repr=False, compare=False)
    """``k``: the groups each split makes."""
    _divisors: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _groups: tuple[Ranges, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _targets: tuple[Ranges, ...] = dataclasses.field(init=False, repr=False, compare=False)
    role_counts: tuple[int, int, int, int] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    """Splits, pieces, combines before the last stage, and outputs, over every stage."""
    nempty_combines: int = dataclasses.field(init=False, repr=False, compare=False)
    """Stage-0 combines that no input feeds (``t % m >= n_in``)."""

    def __post_init__(self) -> None:
        for field in ("n_in", "n_out", "stages"):
            value = getattr(self, field)
            if type(value) is not int or value < 1:
                raise UsageError(f"a shuffle's {field} must be an int >= 1; got {value!r}")
        if self.stages > MAX_STAGES:
            raise UsageError(f"a shuffle has at most {MAX_STAGES} stages; got {self.stages}")
        previous = -1
        for lo, hi in self.outputs:
            if not (type(lo) is int and type(hi) is int and previous < lo < hi <= self.n_out):
                raise UsageError(
                    f"kept outputs {self.outputs!r} are not sorted, disjoint, non-empty ranges "
                    f"within [0, {self.n_out})"
                )
            previous = hi
        stages = self.stages
        k = self.n_out if stages == 1 else nsplits_for(max(self.n_in, self.n_out), stages)
        divisors = tuple(k ** (stages - 1 - s) for s in range(stages))
        groups = tuple(_divide(self.outputs, m) for m in divisors)
        targets = tuple(
            tuple((lo * m, hi * m) for lo, hi in g) for m, g in zip(divisors, groups, strict=True)
        )
        sizes = [ranges_size(t) for t in targets]
        first = self.n_in if self.outputs else 0
        counts = (
            first + sum(sizes[:-1]),
            self.n_in * ranges_size(groups[0]) + k * sum(sizes[1:]),
            sum(sizes[:-1]),
            sizes[-1],
        )
        empty = ranges_size(groups[0]) * max(0, divisors[0] - self.n_in)
        # A frozen dataclass sets its derived fields through object.__setattr__.
        for name, value in (
            ("nsplits", k),
            ("_divisors", divisors),
            ("_groups", groups),
            ("_targets", targets),
            ("role_counts", counts),
            ("nempty_combines", empty),
        ):
            object.__setattr__(self, name, value)

    # -- the grid ------------------------------------------------------------------------

    def divisor(self, stage: int) -> int:
        """``k ** (S - 1 - stage)``: destinations divided by it give the routed digit."""
        return self._divisors[stage]

    def groups(self, stage: int) -> Ranges:
        """Return the routed digits' prefixes ``O // m`` needed at ``stage``, as ranges."""
        return self._groups[stage]

    def targets(self, stage: int) -> Ranges:
        """Return the positions whose combine ``stage`` keeps: whole blocks of ``m``, as ranges."""
        return self._targets[stage]

    def sources(self, stage: int) -> Ranges:
        """Return the positions ``stage`` splits: the inputs at stage 0, else earlier targets."""
        if stage == 0:
            return ((0, self.n_in),) if self.outputs else ()
        return self.targets(stage - 1)

    def piece_groups(self, stage: int, position: int) -> Iterator[int]:
        """Return the groups of the split at ``position`` whose target ``stage`` keeps."""
        k = self.nsplits
        if stage == 0:
            for lo, hi in self.groups(0):
                yield from range(lo, hi)
            return
        base = position // (self.divisor(stage) * k) * k
        for lo, hi in self.groups(stage):
            yield from range(max(lo, base) - base, min(hi, base + k) - base)

    def source_positions(self, stage: int, target: int) -> range:
        """Return the positions whose pieces the combine at ``target`` joins."""
        m = self.divisor(stage)
        if stage == 0:
            return range(target % m, self.n_in, m)
        base = target - (target // m) % self.nsplits * m
        return range(base, base + self.nsplits * m, m)

    def target(self, stage: int, position: int, group: int) -> int:
        """Return the position piece ``(position, group)`` of ``stage`` moves to."""
        m = self.divisor(stage)
        if stage == 0:
            return position % m + group * m
        return position + (group - (position // m) % self.nsplits) * m

    # -- counts --------------------------------------------------------------------------

    def nsplit_tasks(self, stage: int) -> int:
        """Split tasks at ``stage``."""
        return ranges_size(self.sources(stage))

    def npiece_tasks(self, stage: int) -> int:
        """Piece tasks at ``stage``: each kept target takes one from each of its sources."""
        if stage == 0:
            return self.n_in * ranges_size(self.groups(0))
        return self.nsplits * ranges_size(self.targets(stage))

    def ncombine_tasks(self, stage: int) -> int:
        """Combine tasks at ``stage`` (at the last stage: the kept outputs)."""
        return ranges_size(self.targets(stage))

    @property
    def ntasks(self) -> int:
        """Every task of the layer, the empty partition included when it is needed."""
        return sum(self.role_counts) + (1 if self.nempty_combines else 0)

    @property
    def positions(self) -> int:
        """``N``: the size of the grid (``n_out`` with one stage)."""
        return int(self.nsplits**self.stages) if self.stages > 1 else self.n_out
