"""`make chaos` and `make soak`: a multi-replica local Switchboard under injected faults, with the promises checked.

- `topology`: two edges behind a round-robin `balancer`, two auth and two router replicas sharing one
  PostgreSQL schema and one Redis namespace (each reached through a `faultproxy`), and the simulator.
- `load`: a bounded mixed load (every client format, stream and not, sticky conversations, clients that leave
  mid-stream) recording what every client got.
- `faults`: the injections, one per name; `checks`: what must hold after each; `run`: `make chaos`;
  `soak`: `make soak`.
"""
