"""The local world the coordinator is tested and demonstrated against.

`python -m tests.sandbox up|down|status|reset` manages it; Python callers use
`tests.sandbox.world.up(dir) -> World`, `reset(world)` and `down(dir)`. Everything listens on
127.0.0.1 only (see docs/CONTRACTS.md section 1 for the ports).
"""
