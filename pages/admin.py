"""Administration, for global admins: projects, users and roles, data import, the audit trail, workers.

Thin like every page: the tabs are in ``ui.admin_*``, every rule (who may, slugs, timezones, roles, the
import contract) in ``exporthub.accounts`` and ``exporthub.importer``. Anyone else gets "Permission
denied" and nothing more.
"""

from __future__ import annotations

import streamlit as st

from exporthub.accounts import AccountService, is_global_admin
from ui.admin_common import show_flash
from ui.admin_import import audit_tab, import_tab
from ui.admin_projects import projects_tab
from ui.admin_users import users_tab
from ui.session import current_user, database
from ui.workers_panel import workers_tab

admin = current_user()
if not is_global_admin(database(), admin):
    st.error("Permission denied")
    st.stop()
assert admin is not None
accounts = AccountService(database())

st.title("Administration")
show_flash()
projects = accounts.list_projects(admin)
users = accounts.list_users(admin)
# Keyed, stateful tabs: after an action reruns the page the admin stays on the tab they were using.
tab_projects, tab_users, tab_import, tab_audit, tab_workers = st.tabs(
    ["Projects", "Users & roles", "Import data", "Audit trail", "Workers"],
    key="_admin_tab",
    on_change="rerun",
)
with tab_projects:
    projects_tab(accounts, admin, projects)
with tab_users:
    users_tab(accounts, admin, users, projects)
with tab_import:
    import_tab(admin, projects)
with tab_audit:
    audit_tab(accounts, admin)
with tab_workers:
    workers_tab(admin)
