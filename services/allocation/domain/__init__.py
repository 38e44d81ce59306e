"""The allocation service's pure domain core: stdlib only, no I/O, no clock.

Public surface:
- `decide(state, command) -> Decision`, `decide_all(state, commands)` and `decide_batch`
  (the same, plus the keys of the rows written) (`decide.py`);
- the rows, commands, events and `Decision` (`model.py`);
- `ReasonCode`, `Refusal`, `IllegalTransition` (`errors.py`).

Rules live in small modules: `items` (R1, R2), `receiving` (R3–R7), `picking` (R9 FEFO/FIFO),
`shipping` (R8–R10, R14), `adjusting` (R11, R12) with `adjustment_warnings`, `returning` (R13),
`quarantine`, `holding` (held receipt lines); `not_free` says where stock that cannot be taken
is; `draft` is the working copy they write to; `serials` is Next Serial arithmetic (R6) and
where a serial is; `bench_core` a micro-benchmark.
"""
