"""Keys and who may do what.

The config home, key and trust stores, the master key, field encryption, the access
policy and dashboard sign-in.
"""

from __future__ import annotations

from lake.secrets._access import (
    LOCAL_OPERATOR,
    ROLE_PERMISSIONS,
    ROLES,
    AccessDenied,
    AccessPolicy,
    Permission,
    Principal,
    Role,
    check_principal,
    check_reach,
    logged_tenants,
)
from lake.secrets._config import (
    KeyStore,
    KeyWindow,
    TrustStore,
    config_home,
    ensure_outside,
    parse_verifier_keys,
    read_private_key,
    write_private_key,
)
from lake.secrets._crypto import (
    ALERT_FIELDS,
    CIPHER_PREFIX,
    FIELDS,
    decrypted_select,
    encrypted,
    keyring_for,
    master_key,
    open_alerts,
    register_decrypt,
    seal_alerts,
)
from lake.secrets._masterkey import (
    NEXT_FILE,
)
from lake.secrets._private import (
    check_private,
    read_private_json,
    write_private_json,
)
from lake.secrets._scope import (
    scoped_tenants,
)
from lake.secrets._signin import (
    SIGNIN_FILE,
    SIGNIN_PREFIX,
    SigninStore,
    digest,
)

__all__ = [
    "ALERT_FIELDS",
    "CIPHER_PREFIX",
    "FIELDS",
    "LOCAL_OPERATOR",
    "NEXT_FILE",
    "ROLES",
    "ROLE_PERMISSIONS",
    "SIGNIN_FILE",
    "SIGNIN_PREFIX",
    "AccessDenied",
    "AccessPolicy",
    "KeyStore",
    "KeyWindow",
    "Permission",
    "Principal",
    "Role",
    "SigninStore",
    "TrustStore",
    "check_principal",
    "check_private",
    "check_reach",
    "config_home",
    "decrypted_select",
    "digest",
    "encrypted",
    "ensure_outside",
    "keyring_for",
    "logged_tenants",
    "master_key",
    "open_alerts",
    "parse_verifier_keys",
    "read_private_json",
    "read_private_key",
    "register_decrypt",
    "scoped_tenants",
    "seal_alerts",
    "write_private_json",
    "write_private_key",
]
