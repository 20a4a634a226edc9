"""GAN Workbench: the dashboard's entry point and router. Start with `streamlit run app.py`.

It declares every page in its sidebar section (gan_core.dashboard.common.PAGES: Home, the default page at
the root URL, then /configure, /train, /generate, /evaluate, /compare and /models), sets the wide
layout once for all of them, keeps the selected run in session state and ?run= in step, and runs
the open page. The Home page is pages/home.py.

Known limitation: the page files live in pages/, the folder Streamlit's older multipage mode reads.
Until a server process has run st.navigation once, Streamlit also reads that folder, where the pages
are /Configure, /Train, ...; so the first browser session of a freshly started server, if it opens a
page URL such as /train?run=ID rather than the root, gets the right page under a "Page not found"
dialog. Moving the page files to another folder (and their paths in PAGES) removes it.
"""

import streamlit as st

from gan_core.dashboard.common import navigation_pages, sync_selected_run

st.set_page_config(layout="wide")
page = st.navigation(navigation_pages())
sync_selected_run()
page.run()
