# The shared lab's lines of a JupyterHub config (README: Running a shared lab). Copy them into
# your jupyterhub_config.py, or load this file from it: load_subconfig("/path/to/this/file").
c = get_config()  # noqa: F821 (defined by JupyterHub when it reads its config)

# Every user's server runs from the environment holding jumpstarter-jupyter[lab] and jupyterhub.
c.Spawner.cmd = ["/opt/lab/venv/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"

# Lease identity: a user's server may ask the hub for tokens of its own user. A kernel asks for
# one that can only read the user's name and lives ten minutes, and sends that to the exporter
# (never the server's own JUPYTERHUB_API_TOKEN). The first two scopes are the hub's defaults.
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "tokens!user"]

# The lab's pool file for everyone: /etc/jumpstarter/jupyter/jumpstarter-pool.yaml
c.Spawner.environment = {"JUPYTER_CONFIG_PATH": "/etc/jumpstarter/jupyter"}
