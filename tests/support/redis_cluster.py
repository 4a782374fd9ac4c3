"""A Redis Cluster of three primaries with one replica each, as real processes in a temp dir.

Created the way operators do (`redis-cli --cluster create ... --cluster-replicas 1`); each node's
Cluster bus listens on its port + 10000. `cluster-node-timeout` is 1 s, so failures are noticed fast.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from tests.support.processes import wait_for
from tests.support.redis_server import RedisServer, free_cluster_port

SLOT = key_slot(b"{payments}")
NODE_TIMEOUT_MS = 1000


class RedisCluster:
    def __init__(self, directory: Path, primaries: int = 3) -> None:
        self.directory = directory
        self.nodes: list[RedisServer] = []
        for n in range(primaries * 2):
            port = free_cluster_port()
            self.nodes.append(
                RedisServer(
                    directory / f"node-{n}",
                    port=port,
                    args=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(directory / f"node-{n}" / "nodes.conf"),
                        "--cluster-node-timeout",
                        str(NODE_TIMEOUT_MS),
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                )
            )

    @property
    def setting(self) -> str:
        """REDIS_CLUSTER_NODES for the service: every node as a seed."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        wait_for(self._agreed, 30, "every node to see the whole Cluster up")

    def _agreed(self) -> bool:
        owners = set()
        for node in self.nodes:
            with node.client() as client:
                if client.cluster("INFO")["cluster_state"] != "ok":
                    return False
                owners.add(self._owner_id(client))
        return len(owners) == 1

    def _owner_id(self, client: redis.Redis) -> str:
        nodes: Any = client.execute_command("CLUSTER NODES")
        for node in nodes.values():
            if "master" in node["flags"] and _holds(node["slots"], SLOT):
                return str(node["node_id"])
        return ""

    def node_id(self, node: RedisServer) -> str:
        with node.client() as client:
            return str(client.execute_command("CLUSTER MYID"))

    def owner(self) -> RedisServer:
        """The primary that owns the {payments} slot, as that node itself says."""
        for node in self.nodes:
            with node.client() as client:
                if self._owner_id(client) == self.node_id(node):
                    return node
        raise AssertionError("no node owns the {payments} slot")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        primary_id = self.node_id(primary)
        for node in self.nodes:
            with node.client() as client:
                role: Any = client.execute_command("ROLE")
            if role[0] == "slave" and int(role[2]) == primary.port:
                return node
        raise AssertionError(f"no replica of {primary_id}")

    def other_primary(self, than: RedisServer) -> RedisServer:
        for node in self.nodes:
            with node.client() as client:
                role: Any = client.execute_command("ROLE")
            if role[0] == "master" and node is not than:
                return node
        raise AssertionError("no other primary")

    def failover(self, replica: RedisServer) -> None:
        """CLUSTER FAILOVER on a replica: it takes over its primary's slots once it has caught up."""
        with replica.client() as client:
            client.execute_command("CLUSTER FAILOVER")

    def migrate_slot(self, source: RedisServer, target: RedisServer, batch: int = 100) -> None:
        """Move the {payments} slot and its keys to `target`, as `redis-cli --cluster reshard` does."""
        source_id, target_id = self.node_id(source), self.node_id(target)
        with source.client() as src, target.client() as dst:
            dst.execute_command("CLUSTER SETSLOT", SLOT, "IMPORTING", source_id)
            src.execute_command("CLUSTER SETSLOT", SLOT, "MIGRATING", target_id)
            while keys := src.execute_command("CLUSTER GETKEYSINSLOT", SLOT, batch):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            dst.execute_command("CLUSTER SETSLOT", SLOT, "NODE", target_id)
            src.execute_command("CLUSTER SETSLOT", SLOT, "NODE", target_id)
        for node in self.nodes:
            if node not in (source, target):
                with node.client() as client:
                    role: Any = client.execute_command("ROLE")
                    if role[0] == "master":
                        client.execute_command("CLUSTER SETSLOT", SLOT, "NODE", target_id)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def _holds(ranges: list[list[str]], slot: int) -> bool:
    return any(int(r[0]) <= slot <= int(r[-1]) for r in ranges)
