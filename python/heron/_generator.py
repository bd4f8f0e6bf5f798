"""heron.Generator: a seedable source of per-call seeds, like torch.Generator for samplers.

Heron's random ops are counter-based (Philox): a call with `seed=s` always gives the same values.
A Generator turns one user seed into a reproducible sequence of such per-call seeds, so that
`DataLoader(..., shuffle=True, generator=heron.Generator().manual_seed(0))` gives the same epochs in
every run, independently of the default generator (heron.manual_seed).
"""

_MASK64 = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class Generator:
    """A seed plus a counter; each draw gives the next 63-bit seed of its stream."""

    _DEFAULT_SEED = 67280421310721  # PyTorch's default_generator seed, for familiarity

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = self._DEFAULT_SEED
        self._counter = 0

    def manual_seed(self, seed):
        seed = int(seed)
        self._seed = seed & _MASK64
        self._counter = 0
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        """Re-seeds from OS entropy and returns the new seed (torch.Generator.seed)."""
        import os
        return self.manual_seed(int.from_bytes(os.urandom(8), "little") >> 1).initial_seed()

    def get_state(self):
        return (self._seed, self._counter)

    def set_state(self, state):
        self._seed, self._counter = int(state[0]) & _MASK64, int(state[1])
        return self

    def _next_seed(self):
        """The next per-call seed (non-negative, fits an int64)."""
        s = _splitmix64(self._seed ^ _splitmix64(self._counter))
        self._counter += 1
        return s >> 1

    def __repr__(self):
        return f"<heron.Generator seed={self._seed} draws={self._counter}>"
