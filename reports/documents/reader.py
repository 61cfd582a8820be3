"""Who a document is read as: the person who asked for it, or the system.

Every read goes through the selectors with the asking user, so an officer's report shows
only their units. A report the system issues (an operator's command without ``--actor``, the
demo) reads as ``SYSTEM``: authenticated, active and unrestricted, exactly as the selectors
treat a superuser, and never stored as anybody's identity.
"""


class SystemReader:
    is_authenticated = True
    is_active = True
    is_superuser = True
    is_staff = False
    pk = None
    username = "system"

    def has_perm(self, perm, obj=None):
        return True

    def __str__(self):
        return "the system"


SYSTEM = SystemReader()


def reader(user):
    return SYSTEM if user is None else user
