"""Helpers shared by several python suites, imported relatively
(`from ..common.sockio import recv_until_eof`): plain functions only, no
fixtures, nothing that starts a process."""
