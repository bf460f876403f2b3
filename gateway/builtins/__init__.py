"""APIs the gateway answers in-process: each is a :class:`~gateway.calls.service.BuiltinHandler`.

They receive the call and its :class:`~gateway.calls.service.CallContext`; any Airflow CLI command
one of them runs is planned by the interpreter and run through :class:`~gateway.calls.service.CliCalls`.
"""
