"""Generate the committed Python gRPC stubs from proto/ic/v1/*.proto.

`python -m tools.gen_proto proto` rewrites them in place;
`python -m tools.gen_proto --check proto` regenerates into a temporary folder
and fails on any difference, so CI catches stubs that drifted from the protos.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc


def generate(proto_root: Path, out_dir: Path) -> list[Path]:
    sources = sorted(proto_root.glob("ic/v1/*.proto"))
    if not sources:
        raise SystemExit(f"no .proto files under {proto_root}/ic/v1")
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(s.relative_to(proto_root)) for s in sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p.relative_to(out_dir) for p in out_dir.glob("ic/v1/*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("proto_root", type=Path)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ")
    args = parser.parse_args()
    root: Path = args.proto_root
    if not args.check:
        generated = generate(root, root)
        print(f"generated {len(generated)} files under {root}/ic/v1")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(root, Path(tmp))
        committed = sorted(p.relative_to(root) for p in root.glob("ic/v1/*_pb2*.py*"))
        drift = [str(p) for p in generated if not (root / p).exists()]
        drift += [str(p) for p in committed if p not in generated]
        drift += [
            str(p)
            for p in generated
            if (root / p).exists() and not filecmp.cmp(Path(tmp) / p, root / p, shallow=False)
        ]
        if drift:
            print("generated stubs differ from proto/ (run `make proto`):", *drift, sep="\n  ")
            return 1
    print(f"{len(generated)} generated stubs match proto/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
