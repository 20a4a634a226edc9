"""GAN Workbench: the dashboard's entry point and router. Start with `streamlit run app.py`.

It declares every page in its sidebar section (gan_core.dashboard.common.PAGES: Home, the default page at
the root URL, then /configure, /train, /generate, /evaluate, /compare and /models), sets the wide
layout once for all of them, keeps the selected run in session state and ?run= in step, and runs
the open page, then starts importing TensorFlow in the background (gan_core.dashboard.preload). The Home
page is pages/home.py.

The page files live in pages/, each named for its URL path. Until a server process has run
st.navigation once, Streamlit runs a page URL the older way, straight from pages/ without this router;
`start_page`, every page's first call, then routes the way this file does.
"""

from gan_core.dashboard.common import route, run_page

run_page(route())
