"""Small in-memory stand-ins for unit and component tests (never for end-to-end tests)."""


class MemoryRedis:
    """The few Redis calls the geocode cache makes, kept in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.down = False

    async def get(self, key: str):
        if self.down:
            raise ConnectionError("redis down")
        return self.values.get(key)

    async def set(self, key: str, value, ex=None, nx=False):
        if self.down:
            raise ConnectionError("redis down")
        self.values[key] = value.encode() if isinstance(value, str) else value
        return True

    async def ping(self) -> bool:
        return not self.down

    async def aclose(self) -> None:
        pass
