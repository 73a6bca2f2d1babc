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

    async def measure(self) -> dict:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, client_id=f"{self.group}-lag"
        )
        ends = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"{self.group}-lag",
        )
        await admin.start()
        await ends.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.group)
            if not committed:
                return {}
            end_offsets = await ends.end_offsets(list(committed))
            lag = {tp: max(0, end_offsets[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0}
            for tp, value in lag.items():
                CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(value)
            return lag
        finally:
            await ends.stop()
            await admin.close()

    async def run(self) -> None:
        while True:
            try:
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - lag is best effort; the broker may be down
                log.debug("could not measure lag of %s: %s", self.group, exc)
            await asyncio.sleep(self.every_s)
