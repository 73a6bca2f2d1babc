"""Consumer lag per group and partition, for Prometheus: end offset minus committed offset."""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from shared.background import Background
from shared.metrics import CONSUMER_LAG
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)


class LagMonitor(Background):
    """Every `every_s` seconds, sets routemate_consumer_lag_messages for the group's partitions."""

    def __init__(self, settings: PlatformSettings, group: str, every_s: float = 10.0) -> None:
        self.settings, self.group, self.every_s = settings, group, every_s
        self._admin: AIOKafkaAdminClient | None = None
        self._ends: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """One admin client and one offsets reader for the monitor's life (made again after a failure)."""
        if self._admin is None or self._ends is None:
            servers, client_id = self.settings.kafka_bootstrap_servers, f"{self.group}-lag"
            security = self.settings.kafka_client_security()
            admin = AIOKafkaAdminClient(bootstrap_servers=servers, client_id=client_id, **security)
            ends = AIOKafkaConsumer(
                bootstrap_servers=servers, group_id=None, enable_auto_commit=False, client_id=client_id, **security
            )
            try:
                await admin.start()
                await ends.start()
            except BaseException:
                await _quietly_close(admin, ends)
                raise
            self._admin, self._ends = admin, ends
        return self._admin, self._ends

    async def close(self) -> None:
        await _quietly_close(self._admin, self._ends)
        self._admin = self._ends = None

    async def measure(self) -> dict:
        admin, ends = await self._clients()
        committed = await admin.list_consumer_group_offsets(self.group)
        if not committed:
            return {}
        end_offsets = await ends.end_offsets(list(committed))
        lag = {tp: max(0, end_offsets[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0}
        for tp, value in lag.items():
            CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(value)
        return lag

    async def run(self) -> None:
        while True:
            try:
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - lag is best effort; the broker may be down
                log.debug("could not measure lag of %s: %s", self.group, exc)
                await self.close()  # its connections may be dead: open fresh ones next time
            await asyncio.sleep(self.every_s)

    async def stop(self) -> None:
        await super().stop()
        await self.close()


async def _quietly_close(admin: AIOKafkaAdminClient | None, ends: AIOKafkaConsumer | None) -> None:
    for close in (ends.stop if ends else None, admin.close if admin else None):
        if close is not None:
            try:
                await close()
            except Exception:  # noqa: BLE001 - closing a client of a dead broker may fail too
                pass
