"""Retention jobs the privacy terms promise, as plain functions of an injected time.

The app runs :func:`run_maintenance` in the background every ``maintenance_interval_s``; tests
call the functions directly with a chosen ``now``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from api.accounts_store import AccountStore
from api.deps import Services
from notifications import SiteRef, monthly_report_event

logger = logging.getLogger("api.maintenance")


@dataclass(frozen=True)
class MaintenanceReport:
    unconfirmed_accounts_deleted: int
    request_log_rows_deleted: int


def purge_unconfirmed_accounts(
    accounts: AccountStore, now: datetime, max_age: timedelta = timedelta(hours=24)
) -> list[str]:
    """Delete accounts whose email was not confirmed within ``max_age``; return their ids."""
    user_ids = accounts.unconfirmed_before(now - max_age)
    for user_id in user_ids:
        accounts.delete_user(user_id)
    return user_ids


def purge_request_log(
    accounts: AccountStore, now: datetime, retention: timedelta = timedelta(days=28)
) -> int:
    """Drop request-log rows (they hold IP addresses) older than ``retention``; return the count."""
    return accounts.purge_request_log(now - retention)


def announce_monthly_reports(services: Services, now: datetime) -> int:
    """Tell each site's owner that last month's report is ready (on the 1st-3rd, local time).

    A site counts once it existed before the month began; the event's key is the month, so
    the hourly runs of these three days announce each report exactly once.
    """
    if services.notifier is None:
        return 0
    announced = 0
    for site in services.accounts.all_sites():
        local = now.astimezone(ZoneInfo(site.timezone))
        if local.day > 3:
            continue
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month = (first - timedelta(days=1)).strftime("%Y-%m")
        if site.created_at >= (first - timedelta(days=1)).replace(day=1):
            continue
        url = f"{services.settings.public_base_url.rstrip('/')}/ui/#/highlights?report={month}"
        ref = SiteRef(site.id, site.name, site.timezone)
        services.notifier.publish(monthly_report_event(ref, month, now, url))
        announced += 1
    return announced


def run_maintenance(services: Services) -> MaintenanceReport:
    settings = services.settings
    now = services.now()
    services.request_log.flush()
    deleted_users = purge_unconfirmed_accounts(
        services.accounts, now, timedelta(hours=settings.unconfirmed_account_ttl_h)
    )
    deleted_rows = purge_request_log(
        services.accounts, now, timedelta(days=settings.request_log_retention_days)
    )
    announce_monthly_reports(services, now)
    report = MaintenanceReport(len(deleted_users), deleted_rows)
    if deleted_users or deleted_rows:
        logger.info("maintenance: %s", report)
    return report
