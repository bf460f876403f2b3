"""APIs the gateway answers in-process: each is a :class:`~gateway.calls.Builtin`.

They receive the call and its :class:`~gateway.calls.CallContext`; any Airflow CLI command
one of them runs is planned by the interpreter and run through :class:`~gateway.calls.CliCalls`.
"""
