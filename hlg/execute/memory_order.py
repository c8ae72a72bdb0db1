"""The ordering algorithm: two walks that keep few results in memory, and the better one.

Tasks are numbers ``0 .. n - 1`` here (graph order); :mod:`hlg.execute.order`
translates keys. The order is judged the way a single worker would live it: tasks
run one at a time, and a result is *held* from when its task runs until its last
dependent has run. A task nothing depends on is handed over at once and never
held. The fewer results held at the *peak*, the better.

Three rules, applied in this order, make an order that holds little:

1. **Eager**: run a ready task at once if running it does not grow what is held,
   that is, if it is the last dependent of at least as many held results as it
   adds (one, or none for a task nothing depends on). Running such a task earlier
   never raises the count at any later moment, so it is always safe. This is what
   finishes a reduction as soon as its parts exist, and what runs the second
   dependent of a splitter right after the first, so the splitter is released.
2. **Walk**: otherwise, continue a depth-first walk from a *goal*: before a task,
   walk its missing dependencies one subtree at a time, so each subtree finishes,
   and its intermediates are released, before the next starts.
3. **Goal**: when the walk is done, pick where to go next.

Rules 2 and 3 are made in two ways, giving two walks:

- the **static walk** takes the outputs as goals, in the order given (graph order
  by default), and visits dependencies with more direct dependencies first, then
  those with more dependents (a shared result computed first lets its other
  dependents run early), then in graph order. For a tree this is close to the
  Sethi-Ullman order: big subtrees first, so their many intermediates are gone
  before the small ones' few results start waiting.
- the **dynamic walk** picks each goal from what is held: the first unfinished
  dependent of the most recently produced result still held. It visits
  dependencies with the most work below them first (the count of tasks below,
  with shared ones counted once per path, capped). Graphs whose outputs share
  inputs in clusters (an xarray groupby, a rechunk feeding several outputs) need
  this: it finishes the outputs that use what is held before loading anything
  for the others. Its ties follow the static walk's order.

Each walk counts what it holds. The walk holding less at its peak wins; ties go
to the static walk, and the dynamic walk stops as soon as it holds as much as
the static walk's peak. It is not run at all when the static walk's peak is the
most dependencies any one task has (nothing can do better), or when no result
has two dependents (an in-tree, where the newest result held always leads where
the static walk goes next). Neither walk wins on every graph: the static walk is
better on grids of blocks whose reductions follow the grid (``map_overlap``,
``x.T @ x``), the dynamic walk on clustered outputs. Both are linear in tasks
plus dependencies, and deterministic: every choice is
by a task's number or position in a walk, never by hash order.

State vocabulary (lists indexed by task number):

- ``deps[t]`` / ``dependents[t]``: the graph, in both directions;
- ``missing[t]``: dependencies of ``t`` not yet run; ``t`` is *ready* at 0;
- ``waiting[t]``: dependents of ``t`` not yet run; ``t``'s result is held while
  this is positive after ``t`` has run;
- ``owed[t]``: how many more results running ``t`` must release to be eager:
  1 if anything depends on ``t`` (else 0), less the dependencies whose only
  remaining dependent is ``t`` (running ``t`` releases them). ``t`` is eager
  when ready and ``owed[t] <= 0``;
- ``cursor[t]``: index into ``dependents[t]`` before which every dependent has
  run, so finding the first unfinished one costs nothing twice;
- ``eager``: stack of eager tasks, the newest on top, so that a chain of eager
  tasks runs through; entries for tasks already run are skipped when popped
  (tasks only become more eager, never less);
- ``done[t]``: ``t`` has run in the walk under way; ``entered[t]``: the walk has
  pushed ``t``'s dependencies, above a mark ``~t`` (negative) where it runs ``t``
  when it is back to it;
- ``stack`` / ``goals``: the depth-first walk, each task below its dependencies;
- ``produced``: results of the dynamic walk in the order produced.
"""

from __future__ import annotations

from itertools import filterfalse

__all__ = ["memory_order", "order_acyclic"]

# Work counts grow exponentially on lattices of shared dependencies; past this
# they only need to compare as "very big".
_WORK_CAP = 1 << 60


def memory_order(deps: list[list[int]], outputs: list[int] | None = None) -> list[int]:
    """Return the tasks in the order to run them.

    Parameters
    ----------
    deps
        Dependencies of each task, by task number (``0 .. n - 1``, graph order).
    outputs
        Tasks to walk from, in the order to prefer them; those that other tasks
        depend on are skipped. It must hold every task nothing depends on. By
        default, those tasks in graph order.

    Returns
    -------
    list
        Every task number once, each after its dependencies. If the graph has a
        cycle: the tasks that can run, then the rest, each in graph order.

    Examples
    --------
    >>> memory_order([[], [0], [], [1, 2]])  # 3 needs 1 and 2; 1 needs 0
    [0, 1, 2, 3]
    """
    result = order_acyclic(deps, outputs)
    return with_cycle(deps) if result is None else result


def order_acyclic(deps: list[list[int]], outputs: list[int] | None = None) -> list[int] | None:
    """Return the tasks in the order to run them, or ``None`` if the graph has a cycle.

    Like :func:`memory_order`, but a cycle is reported rather than ordered. The
    static walk notices it on its way: a task on a cycle is never ready, so the
    walk either comes back to a task that still misses a dependency, or runs
    out of outputs to walk from with tasks left over. No separate pass is made.

    Examples
    --------
    >>> order_acyclic([[], [0], [], [1, 2]])
    [0, 1, 2, 3]
    >>> order_acyclic([[], [2], [1]]) is None  # 1 and 2 need each other
    True
    """
    g = _Graph(deps, outputs)
    first = _static_walk(g)
    if first is None:
        return None
    order, peak = first
    if peak <= g.widest:
        return order  # every dependency of the widest task is held before it runs anyway
    if g.fan < 2:
        # A forest of in-trees: the newest result held always leads to the task
        # the static walk runs next, so the dynamic walk could only reorder siblings.
        return order
    second = _dynamic_walk(g, order, peak)
    return order if second is None else second


def with_cycle(deps: list[list[int]]) -> list[int]:
    """Order a graph with a cycle: what can run, then the rest, in graph order.

    No order runs the tasks on a cycle; the scheduler finds and reports them,
    starting from the first task of the rest.

    Examples
    --------
    >>> with_cycle([[], [2], [1], [1], [0]])  # 1 and 2 need each other; 3 needs 1
    [0, 4, 1, 2, 3]
    """
    n = len(deps)
    dependents: list[list[int]] = [[] for _ in range(n)]
    for t, ds in enumerate(deps):
        for d in ds:
            dependents[d].append(t)
    missing = list(map(len, deps))
    ready = [t for t, m in enumerate(missing) if not m]
    ready.reverse()
    result: list[int] = []
    while ready:
        t = ready.pop()
        result.append(t)
        for u in dependents[t]:
            missing[u] -= 1
            if not missing[u]:
                ready.append(u)
    return result + [t for t, m in enumerate(missing) if m]


class _Graph:
    """The graph both ways, and the state every walk starts from."""

    __slots__ = (
        "dependents",
        "deps",
        "eager",
        "fan",
        "missing",
        "outputs",
        "owed",
        "waiting",
        "widest",
    )

    def __init__(self, deps: list[list[int]], outputs: list[int] | None) -> None:
        n = len(deps)
        self.deps = deps
        self.dependents = dependents = [[] for _ in range(n)]  # type: list[list[int]]
        for t, ds in enumerate(deps):
            for d in ds:
                dependents[d].append(t)
        self.missing = missing = list(map(len, deps))
        self.waiting = waiting = list(map(len, dependents))
        self.widest = max(missing, default=0)  # the most dependencies of any task
        self.fan = max(waiting, default=0)  # the most dependents of any task
        sinks = [t for t, w in enumerate(waiting) if not w]
        if outputs is None:
            self.outputs = sinks
        else:
            self.outputs = [t for t in dict.fromkeys(outputs) if not waiting[t]]
        # A task must release one result to be eager, or none if nothing needs it; a
        # dependency is released by its dependent when that is its only one.
        self.owed = owed = [1 if w else 0 for w in waiting]
        for ds in dependents:
            if len(ds) == 1:
                owed[ds[0]] -= 1
        eager = [t for t in sinks if not missing[t]]  # lone tasks: they cost nothing to run
        eager.reverse()  # popped from the end: lone tasks run in graph order
        self.eager = eager

    def start(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Fresh ``missing``, ``waiting``, ``owed`` and ``eager`` for one walk."""
        return self.missing[:], self.waiting[:], self.owed[:], self.eager[:]


def _static_walk(g: _Graph) -> tuple[list[int], int] | None:  # noqa: PLR0915 (inline, see below)
    """Run eager tasks first, else walk depth-first from the outputs; count the peak.

    The walk visits dependencies with more direct dependencies first, then those
    with more dependents (a shared result computed first lets its other dependents
    run early), then in graph order. Returns ``None`` if the graph has a cycle.

    This loop runs once per task and once per dependency: finding the next task
    and releasing dependencies are written inline rather than as calls, which
    roughly halves its time on small graphs.
    """
    deps, dependents = g.deps, g.dependents
    missing, waiting, owed, eager = g.start()
    n = len(deps)
    # The last pushed is walked first, so push in ascending order of this key.
    fan, stride = g.fan + 1, n + 1
    push_key = [
        (m * fan + w) * stride - t for t, m, w in zip(range(n), g.missing, g.waiting, strict=True)
    ]
    by_key = push_key.__getitem__
    done = [False] * n
    is_done = done.__getitem__
    entered = [False] * n  # dependencies pushed above its mark ~t, where it runs
    cursor = [0] * n
    result: list[int] = []
    run = result.append
    make_eager = eager.append
    held = peak = 0
    outputs = g.outputs[::-1]  # the next output last
    stack: list[int] = []  # the depth-first walk: tasks to run, dependencies above
    for _ in range(n):
        t = -1
        while eager:
            t = eager.pop()
            if not done[t]:
                break
            t = -1
        if t < 0:
            while True:  # advance the walk to the next task to run
                if not stack:
                    while outputs and done[outputs[-1]]:
                        outputs.pop()
                    if not outputs:
                        return None  # tasks left that no output leads to: a cycle
                    stack.append(outputs.pop())
                t = stack.pop()
                if t < 0:  # back at a task whose dependencies were pushed: run it
                    t = ~t
                    if not done[t]:
                        break
                elif not done[t]:
                    if entered[t]:
                        return None  # met again above its own mark: it needs itself, a cycle
                    entered[t] = True
                    m = missing[t]  # its dependencies not run yet
                    if not m:
                        break
                    stack.append(~t)
                    ds = deps[t]
                    if m == 1:
                        if len(ds) == 1:
                            stack.append(ds[0])
                        else:
                            stack += filterfalse(is_done, ds)
                    elif len(ds) == 2:
                        # Both missing (m counts the dependencies not run, and a task lists
                        # each once): push as a sort would, the greater key last, on top.
                        # Keys differ, as each holds the task's number.
                        a, b = ds
                        if push_key[a] < push_key[b]:
                            stack += (a, b)
                        else:
                            stack += (b, a)
                    else:
                        children = list(filterfalse(is_done, ds))
                        children.sort(key=by_key)
                        stack += children
                    continue
            if missing[t]:
                return None  # back at a task whose dependency needs it: a cycle
        if held > peak:  # noqa: PLR1730 (a call to max costs more in this loop)
            peak = held
        done[t] = True
        run(t)
        for d in deps[t]:
            w = waiting[d] - 1
            waiting[d] = w
            if w == 1:  # its one dependent left now releases it
                ds = dependents[d]
                c = cursor[d]
                while done[ds[c]]:
                    c += 1
                cursor[d] = c
                u = ds[c]
                o = owed[u] - 1
                owed[u] = o
                if o <= 0 and not missing[u]:
                    make_eager(u)
            elif not w:
                held -= 1
        us = dependents[t]
        if us:
            held += 1
            for u in us:
                m = missing[u] - 1
                missing[u] = m
                if not m and owed[u] <= 0:
                    make_eager(u)
    return result, peak


def _dynamic_walk(g: _Graph, first: list[int], bound: int) -> list[int] | None:  # noqa: PLR0915 (inline, see below)
    """Eager tasks first, else walk towards goals taken from what is held.

    The next goal is the first unfinished dependent of the newest result still
    held, else the next output. Gives up (returns ``None``) as soon as it would
    hold ``bound`` results or more: the static walk's order is then at least as
    good. Written inline like :func:`_static_walk`, for the same reason.
    """
    deps = g.deps
    dependents, push_key = _goal_order(g, first)
    by_key = push_key.__getitem__
    missing, waiting, owed, eager = g.start()
    n = len(deps)
    done, cursor = [False] * n, [0] * n
    is_done = done.__getitem__
    result: list[int] = []
    run = result.append
    make_eager = eager.append
    held = 0
    produced: list[int] = []  # results in the order produced; spent ones popped lazily
    goals: list[int] = []  # the depth-first walk: tasks to run, dependencies above
    outputs = g.outputs[::-1]  # the next output last; run ones popped lazily
    left = n  # tasks not run yet
    while left:
        if eager:
            t = eager.pop()
            if done[t]:
                continue
        elif goals:
            t = goals.pop()
            if done[t]:
                continue
            m = missing[t]
            if m:
                goals.append(t)  # back to it once its dependencies, pushed above, have run
                ds = deps[t]
                if m == 1:
                    if len(ds) == 1:
                        goals.append(ds[0])
                    else:
                        goals += filterfalse(is_done, ds)
                elif len(ds) == 2:  # both missing: pushed as in _static_walk
                    a, b = ds
                    if push_key[a] < push_key[b]:
                        goals += (a, b)
                    else:
                        goals += (b, a)
                else:
                    todo = list(filterfalse(is_done, ds))
                    todo.sort(key=by_key)
                    goals += todo
                continue
        else:
            while produced:
                h = produced[-1]
                if waiting[h]:
                    ds = dependents[h]
                    c = cursor[h]
                    while done[ds[c]]:
                        c += 1
                    cursor[h] = c
                    goals.append(ds[c])
                    break
                produced.pop()
            else:
                while done[outputs[-1]]:
                    outputs.pop()
                goals.append(outputs[-1])
            continue
        if held >= bound:
            return None
        done[t] = True
        run(t)
        left -= 1
        for d in deps[t]:
            w = waiting[d] - 1
            waiting[d] = w
            if w == 1:
                ds = dependents[d]
                c = cursor[d]
                while done[ds[c]]:
                    c += 1
                cursor[d] = c
                u = ds[c]
                o = owed[u] - 1
                owed[u] = o
                if o <= 0 and not missing[u]:
                    make_eager(u)
            elif not w:
                held -= 1
        us = dependents[t]
        if us:
            held += 1
            produced.append(t)
            for u in us:
                m = missing[u] - 1
                missing[u] = m
                if not m and owed[u] <= 0:
                    make_eager(u)
    return result


def _goal_order(g: _Graph, first: list[int]) -> tuple[list[list[int]], list[int]]:
    """Return dependents in the static walk's order, and the dynamic walk's push order.

    Dependencies with the most work below them (tasks below, counted once per
    path, capped) are walked first, then in static order. The last pushed is
    walked first, so the key ascends to the first to walk. One pass in static
    order does it all: each task comes after its dependencies, so its work is
    known when it is reached, and appending it to its dependencies' lists keeps
    those lists in static order without sorting them.
    """
    n = len(first)
    deps = g.deps
    dependents: list[list[int]] = [[] for _ in range(n)]
    work = [1] * n
    push_key = [0] * n
    stride = n + 1
    for i, t in enumerate(first):
        ds = deps[t]
        if ds:
            w = 1
            for d in ds:
                dependents[d].append(t)
                w += work[d]
            if w > _WORK_CAP:  # noqa: PLR1730 (a call to min costs more in this loop)
                w = _WORK_CAP
            work[t] = w
            push_key[t] = w * stride - i
        else:
            push_key[t] = stride - i
    return dependents, push_key
