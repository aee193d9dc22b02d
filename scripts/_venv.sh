# Sourced by scripts/*: make .venv with setpeer and its test extras installed.
# Reinstalls only when pyproject.toml changed since the last install.
py=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$candidate; break
  fi
done
if [ -z "$py" ]; then echo "setpeer needs Python >= 3.11" >&2; exit 1; fi
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $py"
  "$py" -m venv .venv
fi
stamp=.venv/.setpeer-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== installing setpeer[test] into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
