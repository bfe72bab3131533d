"""Evaluation: deterministic rollouts of any policy as accounts of one batched core (``rollout``),
per-run metrics (``metrics``), the statistics of a comparison — bootstrap intervals, PSR, DSR,
paired tests (``statistics``) — and the stress runner over scenarios x seeds (``stress``)."""
