from .access import BusinessUnit, ServiceToken

__all__ = ["BusinessUnit", "ServiceToken"]
