"The package's shape: modules import each other in one direction only, and each run file is named in one place."
import ast, graphlib, re
from conftest import ROOT

PACKAGE = ROOT/'all_nb'

def package_imports()->dict:
    "module -> the package modules it imports, at the top or inside functions."
    mods = {p.stem: p for p in PACKAGE.glob('*.py') if p.stem not in ('__init__', '_modidx')}
    deps = {}
    for name, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level == 1 and base: found.add(base.split('.')[0])
                elif node.level == 1: found |= {a.name for a in node.names}
                elif base.startswith('all_nb.'): found.add(base.split('.')[1])
                elif base == 'all_nb': found |= {a.name for a in node.names}
            elif isinstance(node, ast.Import): found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('all_nb.')}
        deps[name] = {d for d in found if d in mods and d != name}
    return deps

def test_no_import_cycle():
    "graphlib's topological sort fails with a CycleError if two modules import each other, even through others."
    order = list(graphlib.TopologicalSorter(package_imports()).static_order())
    assert order.index('core') < order.index('data') < order.index('run') < order.index('train') < order.index('cli')

def test_core_imports_no_package_module():
    assert package_imports()['core'] == set()

def test_run_file_names_live_in_core():
    "Only `core` spells a run folder's file names; the others ask `RunPaths` or `RUN_FILES`."
    names = re.compile(r"""['"](config\.json|split\.json|history\.csv|model\.pth|metrics\.json|evaluation\.json|report\.html|flags\.csv|result\.json)['"]""")
    offenders = [(p.name, m.group(1)) for p in PACKAGE.glob('*.py') if p.stem not in ('core', '_modidx')
                 for line in p.read_text().splitlines() if not line.lstrip().startswith('#') for m in names.finditer(line)]
    assert offenders == []
