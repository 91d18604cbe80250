"""A local Ray cluster that listens on 127.0.0.1 only."""

from __future__ import annotations

import ray._private.ray_constants as ray_constants


def bind_local_cluster_to_loopback() -> None:
    """Make the next ``ray.init()`` start a cluster whose GCS, raylet, object manager, workers
    and agents listen on 127.0.0.1 only (they used to listen on every interface).

    ``ray.init(_node_ip_address="127.0.0.1")`` does not do it: Ray 2.60 "resolves" a loopback
    address to the machine's reachable IP (``services.resolve_ip_for_localhost``). What does is
    the switch Ray uses for single-machine clusters on macOS and Windows: with it off, the node
    IP is the loopback IP, Ray hands that IP to every process it starts, and every server binds
    to it (measured: tests/test_ray_security.py reads /proc/net/tcp{,6}). Only for a local
    cluster: a driver joining a real cluster (``--address``) needs its IP; ``driver.shutdown``
    switches it back.
    """
    # PRIVATE (checked: ray 2.60): ray_constants.ENABLE_RAY_CLUSTER (the env switch
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER, read when ray is imported) is read by
    # services.get_node_ip_address at call time. The environment is left alone, so processes
    # this one starts later (a `ray start` of a user's own cluster) are unaffected.
    ray_constants.ENABLE_RAY_CLUSTER = False


def restore_cluster_default() -> None:
    # PRIVATE (checked: ray 2.60): see bind_local_cluster_to_loopback.
    ray_constants.ENABLE_RAY_CLUSTER = ray_constants.env_bool(
        ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, not ray_constants.IS_WINDOWS_OR_OSX
    )
