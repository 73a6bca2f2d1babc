"""The iterated local search of services/optimizer/ils.py in plain Python, for small routes.

The same moves (2-opt, and Or-opt of segments of 1-3 stops, forward or reversed, around each
stop's nearest neighbours), tried in the same order, the same double-bridge kicks and the same
acceptance rule, on Python lists instead of numba-compiled arrays. A process that solves one
small job (`routemate optimize`) then never imports numba nor loads its cached machine code,
which together cost about a second; the optimizer service loads the compiled search at start-up
and uses it for every size.

Deterministic for the same inputs. Its random numbers are Python's, not numba's, so its route
may differ from the compiled search's where two routes are about as long.
"""

import random
import time

import numpy as np


def neighbours(near: np.ndarray, anchor: int, k: int) -> np.ndarray:
    """The k nearest other nodes of each node by `near`, plus the anchor (any node may start or end the route)."""
    size = near.shape[0]
    k = min(k, size - 2)
    d = near.astype(np.float64).copy()
    np.fill_diagonal(d, np.inf)
    d[:, anchor] = np.inf
    nearest = np.argsort(d, axis=1, kind="stable")[:, : max(k, 0)]
    return np.hstack([nearest, np.full((size, 1), anchor)]).astype(np.int64)


def improve(
    c: np.ndarray,
    neigh: np.ndarray,
    tour: np.ndarray,
    anchor: int,
    kicks: int,
    max_segment: int,
    seed: int,
    slack: float = 0.0,
    patience: int | None = None,
    deadline: float | None = None,
) -> tuple[np.ndarray, int]:
    """ils.improve's contract: the best tour found from `tour` (tour[0] == tour[n] == anchor) and its
    cost. With `patience`, the search also ends once that many kicks in a row found no shorter tour;
    with `deadline` (time.perf_counter()), once it has passed."""
    rng = random.Random(seed)
    n = len(tour) - 1
    search = _Search(c.tolist(), neigh.tolist(), n, anchor)
    cur = [int(node) for node in tour]
    search.refresh(cur)
    search.run(cur, [cur[t] for t in range(1, n)])
    best, best_cost = cur[:], search.fwd[n]
    if n < 8:
        return np.array(cur, dtype=np.int64), best_cost
    last = 0
    for kick in range(kicks):
        if (patience is not None and kick - last >= patience) or (
            deadline is not None and time.perf_counter() > deadline
        ):
            break
        # double bridge on a window of the tour: A B C D -> A C B D
        i = 1 + rng.randrange(n - 3)
        j = min(i + 1 + rng.randrange(max_segment), n - 1)
        k = min(j + 1 + rng.randrange(max_segment), n)
        if not (i < j < k):
            continue
        trial = cur[:i] + cur[j:k] + cur[i:j] + cur[k:]
        search.refresh(trial)
        cut = i + k - j
        search.run(trial, [trial[t] for t in (i - 1, i, cut - 1, cut, k - 1, k)])
        length = search.fwd[n]
        if length <= best_cost + slack * best_cost:
            cur = trial
            if length < best_cost:
                best_cost, best, last = length, trial[:], kick
    return np.array(best, dtype=np.int64), best_cost


class _Search:
    """Local search over one tour: each node's position, and forward/backward prefix costs along
    the tour, which price a reversed segment in O(1) on asymmetric costs."""

    def __init__(self, cost: list[list[int]], near: list[list[int]], n: int, anchor: int) -> None:
        self.c, self.near, self.n, self.anchor = cost, near, n, anchor
        self.pos = [0] * len(cost)
        self.fwd = [0] * (n + 1)
        self.bwd = [0] * (n + 1)

    def refresh(self, tour: list[int]) -> None:
        c, pos, fwd, bwd = self.c, self.pos, self.fwd, self.bwd
        f = b = 0
        for k in range(self.n):
            a, z = tour[k], tour[k + 1]
            pos[a] = k
            f += c[a][z]
            b += c[z][a]
            fwd[k + 1], bwd[k + 1] = f, b

    def run(self, tour: list[int], start: list[int]) -> None:
        """Apply the best 2-opt or Or-opt move around each queued stop until none gains.

        Moves are tried in ils._local_search's order and the first of equal gains is kept, so
        both searches take the same step from the same tour."""
        c, n, anchor, pos, fwd, bwd = self.c, self.n, self.anchor, self.pos, self.fwd, self.bwd
        queue = [a for a in dict.fromkeys(start) if a != anchor]
        queued = set(queue)
        head = 0
        while head < len(queue):
            a = queue[head]
            head += 1
            queued.discard(a)
            best, move = 0, None
            ai = pos[a]
            # The Or-opt segments of 1-3 stops that start or end at a, and what taking them out saves.
            segments = []
            for length in (1, 2, 3):
                for i in (ai,) if length == 1 else (ai, ai - length + 1):
                    e = i + length - 1
                    if i < 1 or e > n - 1:
                        continue
                    p, s, x, q = tour[i - 1], tour[i], tour[e], tour[e + 1]
                    cut = c[p][q] - c[p][s] - c[x][q]
                    inner = (bwd[e] - bwd[i]) - (fwd[e] - fwd[i])
                    segments.append((i, e, s, x, c[s], c[x], cut, cut + inner, length > 1))
            for b in self.near[a]:
                for bpos in (0, n) if b == anchor else (pos[b],):
                    # 2-opt: reverse tour[i..j] so that a and b become adjacent
                    pairs = ((ai + 1, bpos), (ai, bpos - 1)) if ai < bpos else ((bpos + 1, ai), (bpos, ai - 1))
                    for i, j in pairs:
                        if i < 1 or j > n - 1 or i >= j:
                            continue
                        p, s, x, q = tour[i - 1], tour[i], tour[j], tour[j + 1]
                        cp = c[p]
                        d = cp[x] + c[s][q] - cp[s] - c[x][q] + (bwd[j] - bwd[i]) - (fwd[j] - fwd[i])
                        if d < best:
                            best, move = d, (1, i, j, 0, False)
                    # Or-opt: one of those segments, put next to b
                    for i, e, s, x, cs, cx, cut, cut_reversed, reversible in segments:
                        for k in (bpos - 1, bpos):
                            if k < 0 or k > n - 1 or i - 1 <= k <= e:
                                continue
                            u, v = tour[k], tour[k + 1]
                            cu = c[u]
                            d = cut - cu[v] + cu[s] + cx[v]
                            if d < best:
                                best, move = d, (2, i, e, k, False)
                            if reversible:
                                d = cut_reversed - cu[v] + cu[x] + cs[v]
                                if d < best:
                                    best, move = d, (2, i, e, k, True)
            if move is None:
                continue
            kind, i, j, k, rev = move
            if kind == 1:
                touched = (tour[i - 1], tour[i], tour[j], tour[j + 1], a)
                tour[i : j + 1] = tour[i : j + 1][::-1]
            else:
                touched = (tour[i - 1], tour[i], tour[j], tour[j + 1], tour[k], tour[k + 1], a)
                segment = tour[i : j + 1][::-1] if rev else tour[i : j + 1]
                if k < i:
                    tour[k + 1 : j + 1] = segment + tour[k + 1 : i]
                else:
                    tour[i : k + 1] = tour[j + 1 : k + 1] + segment
            self.refresh(tour)
            for node in touched:
                if node != anchor and node not in queued:
                    queued.add(node)
                    queue.append(node)
