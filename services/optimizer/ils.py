"""Iterated local search for one route: 2-opt and Or-opt on neighbour lists, double-bridge kicks.

The route is a cycle through an anchor (the depot, or a zero-cost dummy for a route open at
both ends) kept at position 0 and N of the tour array. Costs may be asymmetric (an OSRM matrix,
or a zeroed return leg for a route that does not come back): prefix sums of the forward and the
backward cost along the tour price a reversed segment in O(1).

Compiled with numba (no GIL held), so a solve runs on its own core beside the event loop.
services/optimizer/ils_small.py is the same search in plain Python, for a small job in a process
that should not pay for loading numba (`routemate optimize`).
"""

import numba as nb
import numpy as np

from services.optimizer.ils_small import neighbours  # the candidate lists both searches share


@nb.njit(cache=True, nogil=True)
def _refresh(tour, pos, fwd, bwd, c, n):
    fwd[0] = 0
    bwd[0] = 0
    for k in range(n):
        a, b = tour[k], tour[k + 1]
        pos[a] = k
        fwd[k + 1] = fwd[k] + c[a, b]
        bwd[k + 1] = bwd[k] + c[b, a]


@nb.njit(cache=True, nogil=True)
def _push(node, anchor, queue, queued, tail, size):
    if node != anchor and not queued[node]:
        queued[node] = True
        queue[tail % size] = node
        return tail + 1
    return tail


@nb.njit(cache=True, nogil=True)
def _two_opt_delta(tour, fwd, bwd, c, i, j):
    """Reverse tour[i..j]; 1 <= i < j <= n-1."""
    p, s, x, q = tour[i - 1], tour[i], tour[j], tour[j + 1]
    return c[p, x] + c[s, q] - c[p, s] - c[x, q] + (bwd[j] - bwd[i]) - (fwd[j] - fwd[i])


@nb.njit(cache=True, nogil=True)
def _or_delta(tour, fwd, bwd, c, i, e, k, rev):
    """Move tour[i..e] between tour[k] and tour[k+1] (k outside i-1..e), reversed or not."""
    p, s, x, q, u, v = tour[i - 1], tour[i], tour[e], tour[e + 1], tour[k], tour[k + 1]
    d = c[p, q] - c[p, s] - c[x, q] - c[u, v]
    if rev:
        return d + c[u, x] + c[s, v] + (bwd[e] - bwd[i]) - (fwd[e] - fwd[i])
    return d + c[u, s] + c[x, v]


@nb.njit(cache=True, nogil=True)
def _apply_or(tour, buf, n, i, e, k, rev):
    m = 0
    if k < i:  # segment moves back: 0..k, seg, k+1..i-1, e+1..n
        for t in range(0, k + 1):
            buf[m] = tour[t]
            m += 1
        for t in range(e - i + 1):
            buf[m] = tour[e - t] if rev else tour[i + t]
            m += 1
        for t in range(k + 1, i):
            buf[m] = tour[t]
            m += 1
        for t in range(e + 1, n + 1):
            buf[m] = tour[t]
            m += 1
    else:  # segment moves forward: 0..i-1, e+1..k, seg, k+1..n
        for t in range(0, i):
            buf[m] = tour[t]
            m += 1
        for t in range(e + 1, k + 1):
            buf[m] = tour[t]
            m += 1
        for t in range(e - i + 1):
            buf[m] = tour[e - t] if rev else tour[i + t]
            m += 1
        for t in range(k + 1, n + 1):
            buf[m] = tour[t]
            m += 1
    for t in range(n + 1):
        tour[t] = buf[t]


@nb.njit(cache=True, nogil=True)
def _local_search(tour, pos, fwd, bwd, c, neigh, n, anchor, queue, queued, head, tail, buf):
    """Improve until no 2-opt or Or-opt move around a queued node gains; returns nothing."""
    size = queue.shape[0]
    while head < tail:
        a = queue[head % size]
        head += 1
        queued[a] = False
        best, kind, bi_, bj, bk, brev = 0, 0, 0, 0, 0, False
        ai = pos[a]
        for b in neigh[a]:
            for side in range(2):
                if b == anchor:
                    bpos = 0 if side == 0 else n
                elif side == 1:
                    break
                else:
                    bpos = pos[b]
                # 2-opt: make a and b adjacent
                if ai < bpos:
                    if ai + 1 < bpos and bpos <= n - 1:
                        d = _two_opt_delta(tour, fwd, bwd, c, ai + 1, bpos)
                        if d < best:
                            best, kind, bi_, bj = d, 1, ai + 1, bpos
                    if ai < bpos - 1:
                        d = _two_opt_delta(tour, fwd, bwd, c, ai, bpos - 1)
                        if d < best:
                            best, kind, bi_, bj = d, 1, ai, bpos - 1
                else:
                    if bpos + 1 < ai:
                        d = _two_opt_delta(tour, fwd, bwd, c, bpos + 1, ai)
                        if d < best:
                            best, kind, bi_, bj = d, 1, bpos + 1, ai
                    if bpos >= 1 and bpos < ai - 1:
                        d = _two_opt_delta(tour, fwd, bwd, c, bpos, ai - 1)
                        if d < best:
                            best, kind, bi_, bj = d, 1, bpos, ai - 1
                # Or-opt: a segment of 1-3 starting or ending at a, put next to b
                for length in range(1, 4):
                    for end in range(2):
                        if length == 1 and end == 1:
                            continue
                        i = ai if end == 0 else ai - length + 1
                        e = i + length - 1
                        if i < 1 or e > n - 1:
                            continue
                        for k in (bpos - 1, bpos):
                            if k < 0 or k > n - 1 or (k >= i - 1 and k <= e):
                                continue
                            for rev in (False, True):
                                if length == 1 and rev:
                                    continue
                                d = _or_delta(tour, fwd, bwd, c, i, e, k, rev)
                                if d < best:
                                    best, kind, bi_, bj, bk, brev = d, 2, i, e, k, rev
        if kind == 0:
            continue
        if kind == 1:
            touched = (tour[bi_ - 1], tour[bi_], tour[bj], tour[bj + 1], a, a, a)
            tour[bi_ : bj + 1] = tour[bi_ : bj + 1][::-1].copy()
        else:
            touched = (tour[bi_ - 1], tour[bi_], tour[bj], tour[bj + 1], tour[bk], tour[bk + 1], a)
            _apply_or(tour, buf, n, bi_, bj, bk, brev)
        _refresh(tour, pos, fwd, bwd, c, n)
        for node in touched:
            tail = _push(node, anchor, queue, queued, tail, size)
    return tail


@nb.njit(cache=True, nogil=True)
def improve(c, neigh, tour, anchor, kicks, max_segment, seed, slack=0.0):
    """Iterated local search from `tour` (length n+1, tour[0] == tour[n] == anchor).

    Runs `kicks` double-bridge perturbations, each followed by local search around the cut
    points, keeping a kicked tour when it is no longer than the current one. Returns the
    best tour and its cost. Deterministic for the same inputs.
    """
    np.random.seed(seed)
    n = tour.shape[0] - 1
    size = n + 1
    pos = np.zeros(c.shape[0], dtype=np.int64)
    fwd = np.zeros(n + 1, dtype=np.int64)
    bwd = np.zeros(n + 1, dtype=np.int64)
    queue = np.zeros(size, dtype=np.int64)
    queued = np.zeros(c.shape[0], dtype=np.bool_)
    buf = np.zeros(n + 1, dtype=np.int64)
    cur = tour.copy()
    _refresh(cur, pos, fwd, bwd, c, n)
    tail = 0
    for t in range(1, n):
        tail = _push(cur[t], anchor, queue, queued, tail, size)
    _local_search(cur, pos, fwd, bwd, c, neigh, n, anchor, queue, queued, 0, tail, buf)
    cost = fwd[n]
    best, best_cost = cur.copy(), cost
    trial = cur.copy()
    if n < 8:
        return cur, cost
    for _ in range(kicks):
        trial[:] = cur
        # double bridge on a window of the tour: A B C D -> A C B D
        i = 1 + np.random.randint(n - 3)
        j = min(i + 1 + np.random.randint(max_segment), n - 1)
        k = min(j + 1 + np.random.randint(max_segment), n)
        if not (i < j < k):
            continue
        m = i
        for t in range(j, k):
            buf[m] = cur[t]
            m += 1
        for t in range(i, j):
            buf[m] = cur[t]
            m += 1
        for t in range(i, k):
            trial[t] = buf[t]
        _refresh(trial, pos, fwd, bwd, c, n)
        tail = 0
        for t in (i - 1, i, i + k - j - 1, i + k - j, k - 1, k):
            tail = _push(trial[t], anchor, queue, queued, tail, size)
        _local_search(trial, pos, fwd, bwd, c, neigh, n, anchor, queue, queued, 0, tail, buf)
        if fwd[n] <= best_cost + slack * best_cost:
            cost = fwd[n]
            cur[:] = trial
            if cost < best_cost:
                best_cost = cost
                best[:] = cur
    return best, best_cost


def warm_up() -> None:
    """Compile (or load from numba's cache beside this file) the search, so no job pays for it."""
    size = 12
    cost = np.arange(size * size, dtype=np.int64).reshape(size, size) % 97 + 1
    improve(
        cost,
        neighbours(cost, size - 1, 4),
        np.array([size - 1, *range(size - 1), size - 1], dtype=np.int64),
        size - 1,
        4,
        4,
        1,
        0.0,
    )


if __name__ == "__main__":  # `python -m services.optimizer.ils`: compile ahead, as `make install` does
    warm_up()
