"""The account pool: which account serves a request, and what each account can still do."""
