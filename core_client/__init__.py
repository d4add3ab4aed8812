"""The only door to a center's HPF core system, used by IVR and SMS alike.

``interface`` is the contract (CoreClient, dataclasses, typed errors). Backends:
``embedded`` (a generated demo core database, ``demo_data``) and ``http`` (a
signed HTTPS/JSON client for ``openapi.yaml``). ``lockout`` wraps any backend
with the platform's wrong-password lock, ``codes`` issues and checks
verification codes, ``directory.build_cores`` builds one core per configured
center. ``testing`` ships FakeCore and CoreServer for other rooms' tests.
"""
