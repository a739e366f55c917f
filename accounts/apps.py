from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from accounts.throttling import device_login_failed, lockout_recorded

        # Counters for the login throttling (accounts/throttling.py): lockouts per address (for the backoff) and
        # failures per trusted device.
        user_locked_out.connect(lockout_recorded, dispatch_uid="accounts-lockout-backoff")
        user_login_failed.connect(device_login_failed, dispatch_uid="accounts-device-failures")
