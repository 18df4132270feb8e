"""A little CSS on top of Streamlit's theme: calmer cards, tidy file lists, and a usable phone layout
(cards stack, buttons are touch-sized, dialogs fill the screen)."""

from __future__ import annotations

import streamlit as st

_CSS = """
<style>
/* Cards: equal height within a row, the button at the bottom. */
[data-testid="stHorizontalBlock"]:has([class*="st-key-card-"]) { align-items: stretch; }
[data-testid="stColumn"]:has([class*="st-key-card-"]) > [data-testid="stVerticalBlock"],
[data-testid="stLayoutWrapper"]:has(> [class*="st-key-card-"]) { height: 100%; }
[class*="st-key-card-"] {
  height: 100%;
  background: var(--eh-card-bg, #FBFCFE);
  border-radius: 0.75rem;
  box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04);
}
[class*="st-key-card-"] > div:last-child { margin-top: auto; }
[class*="st-key-card-"] h4 { padding: 0; margin: 0; }
[class*="st-key-jobs-job-"] { border-radius: 0.6rem; background: #FFFFFF; }
/* Muted text at WCAG AA: #596273 is 6.1:1 on white and 5.6:1 on the sidebar grey (Streamlit's own
   60 % grey is 4.2:1). */
.eh-muted { color: #596273; font-size: 0.875rem; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: #596273; }
/* Confirming what cannot be undone (Confirm remove, cancel, reset, close): red, not the primary blue. */
[class*="st-key-"][class*="confirm"] [data-testid="stBaseButton-primary"] {
  background-color: #B42318; border-color: #B42318; color: #FFFFFF;
}
[class*="st-key-"][class*="confirm"] [data-testid="stBaseButton-primary"]:hover {
  background-color: #912018; border-color: #912018;
}
ul.eh-files { list-style: none; margin: 0; padding: 0; }
ul.eh-files li { margin: 0 0 0.3rem 0; display: flex; gap: 0.5rem; align-items: baseline; min-width: 0; }
a.eh-file, span.eh-file {
  font-weight: 600; text-decoration: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  min-width: 0; flex: 0 1 auto;
}
.eh-icon {
  font-family: "Material Symbols Rounded"; font-weight: normal; font-style: normal; font-size: 1.15em;
  line-height: 1; letter-spacing: normal; text-transform: none; white-space: nowrap; direction: ltr;
  font-feature-settings: "liga"; -webkit-font-smoothing: antialiased; vertical-align: -0.2em;
  margin-right: 0.25em; user-select: none; text-decoration: none; display: inline-block;
}
a.eh-file:hover { text-decoration: underline; }
.eh-file-meta { color: #596273; font-size: 0.85rem; white-space: nowrap; }
.eh-dialog-title { font-size: 1.2rem; font-weight: 650; line-height: 1.3; }
.st-key-login-card { max-width: 26rem; margin: 8vh auto 0 auto; }
.st-key-project-management { text-align: right; }

/* Phones: one column, touch-sized buttons, full-screen dialogs. */
@media (max-width: 640px) {
  [class*="st-key-card-"] { min-height: 0; }
  .stButton button, .stDownloadButton button, .stFormSubmitButton button, [data-testid="stPageLink"] a {
    min-height: 44px;
  }
  [class*="st-key-card-"] .stButton button { width: 100%; }
  [data-testid="stDialog"] { padding: 0 !important; }
  [data-testid="stDialog"] > div {
    width: 100vw !important; max-width: 100vw !important; min-height: 100dvh;
    margin: 0 !important; border-radius: 0 !important;
  }
  .st-key-project-management { text-align: left; }
  .eh-dialog-title { font-size: 1.2rem; font-weight: 650; line-height: 1.3; }
.st-key-login-card { margin-top: 2vh; }
}
</style>
"""


def inject() -> None:
    """Add the app's CSS (a style-only ``st.html`` takes no space on the page)."""
    st.html(_CSS)
