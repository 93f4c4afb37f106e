"""Failure drills: each failure class an ops team tries first, driven through the coordinator CLI
on the real local world, asserting what the operator sees (exit code, one-line error, escalation,
lock state, audit records, what runs where)."""
