"""Recover upstream Jumpstarter 0.9.0's .proto files from the descriptors its stubs embed.

The jumpstarter-protocol wheel ships generated stubs, not .proto files; each ``_pb2`` module
carries its serialized FileDescriptorProto, from which this prints proto3 source. A maintainer
tool, run with the upstream peer's python (it imports upstream's stubs), never at build or test
time:

    PEER=$(scripts/setup-upstream-peer.sh)
    $PEER/bin/python scripts/recover_upstream_protos.py --write proto      # write proto/jumpstarter/...
    $PEER/bin/python scripts/recover_upstream_protos.py                    # print them
    $PEER/bin/python scripts/recover_upstream_protos.py --descriptors FILE # upstream's FileDescriptorSet

``--descriptors`` writes upstream's descriptors, normalised as ``normalise`` says, for
tests/protocol/test_upstream_protos.py to compare with what protoc makes of our files.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2, text_format
from google.protobuf.descriptor import FieldDescriptor

# upstream's stub modules, in dependency order
MODULES = [
    "jumpstarter_protocol.jumpstarter.v1.common_pb2",
    "jumpstarter_protocol.jumpstarter.v1.kubernetes_pb2",
    "jumpstarter_protocol.jumpstarter.v1.router_pb2",
    "jumpstarter_protocol.jumpstarter.v1.jumpstarter_pb2",
    "jumpstarter_protocol.jumpstarter.client.v1.client_pb2",
]
HEADER = (
    "// Recovered from upstream Jumpstarter 0.9.0's jumpstarter-protocol stubs by\n"
    "// scripts/recover_upstream_protos.py: do not edit (names and numbers are the wire contract).\n"
)
LABELS = {
    FieldDescriptor.LABEL_REPEATED: "repeated ",
    FieldDescriptor.LABEL_OPTIONAL: "",
    FieldDescriptor.LABEL_REQUIRED: "required ",
}
SCALARS = {
    value: name[len("TYPE_") :].lower()
    for name, value in descriptor_pb2.FieldDescriptorProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}


def upstream_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """Upstream's FileDescriptorProtos, as embedded in its stubs (google/api options parsed)."""
    importlib.import_module("google.api.annotations_pb2")
    files = []
    for name in MODULES:
        proto = descriptor_pb2.FileDescriptorProto()
        importlib.import_module(name).DESCRIPTOR.CopyToProto(proto)
        files.append(proto)
    return files


def normalise(proto: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Drop what buf adds and protoc does not: file options and json_name."""
    proto = descriptor_pb2.FileDescriptorProto.FromString(proto.SerializeToString())
    proto.ClearField("options")
    proto.ClearField("source_code_info")

    def strip(message: descriptor_pb2.DescriptorProto) -> None:
        for field in message.field:
            field.ClearField("json_name")
        for nested in message.nested_type:
            strip(nested)

    for message in proto.message_type:
        strip(message)
    return proto


def option_value(field: FieldDescriptor, value) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return "{" + text_format.MessageToString(value, as_one_line=True) + "}"
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    if field.type == FieldDescriptor.TYPE_STRING:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    return str(value)


def options(message) -> list[str]:
    """``name = value`` for each option set, one entry per element of a repeated option."""
    out = []
    for field, value in message.ListFields():
        name = f"({field.full_name})" if field.is_extension else field.name
        values = value if field.is_repeated else [value]
        out += [f"{name} = {option_value(field, v)}" for v in values]
    return out


def type_name(proto: descriptor_pb2.FieldDescriptorProto) -> str:
    if proto.type in SCALARS:
        return SCALARS[proto.type]
    return proto.type_name.lstrip(".")


def relative(name: str, package: str) -> str:
    """A type name as the source would write it (same package: without it)."""
    return name[len(package) + 1 :] if name.startswith(package + ".") else name


class Printer:
    def __init__(self, proto: descriptor_pb2.FileDescriptorProto):
        self.proto = proto
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("  " * depth + text if text else "")

    def field_type(self, field: descriptor_pb2.FieldDescriptorProto, message) -> str:
        if field.type == field.TYPE_MESSAGE:
            entry = next((n for n in message.nested_type if field.type_name.endswith("." + n.name)), None)
            if entry is not None and entry.options.map_entry:
                key, value = entry.field
                return f"map<{type_name(key)}, {relative(type_name(value), self.proto.package)}>"
        return relative(type_name(field), self.proto.package)

    def field(self, depth: int, field: descriptor_pb2.FieldDescriptorProto, message) -> None:
        label = "optional " if field.proto3_optional else LABELS[field.label]
        kind = self.field_type(field, message)
        if kind.startswith("map<"):
            label = ""
        opts = options(field.options)
        suffix = f" [{', '.join(opts)}]" if opts else ""
        self.emit(depth, f"{label}{kind} {field.name} = {field.number}{suffix};")

    def message(self, depth: int, message: descriptor_pb2.DescriptorProto) -> None:
        self.emit(depth, f"message {message.name} {{")
        for option in options(message.options):
            self.emit(depth + 1, f"option {option};")
        for nested in message.nested_type:
            if not nested.options.map_entry:
                self.message(depth + 1, nested)
        for enum in message.enum_type:
            self.enum(depth + 1, enum)
        printed_oneofs = set()
        for field in message.field:
            real_oneof = field.HasField("oneof_index") and not field.proto3_optional
            if not real_oneof:
                self.field(depth + 1, field, message)
            elif field.oneof_index not in printed_oneofs:
                printed_oneofs.add(field.oneof_index)
                self.emit(depth + 1, f"oneof {message.oneof_decl[field.oneof_index].name} {{")
                for member in message.field:
                    if member.HasField("oneof_index") and member.oneof_index == field.oneof_index:
                        self.field(depth + 2, member, message)
                self.emit(depth + 1, "}")
        for reserved in message.reserved_range:
            end = reserved.end - 1
            self.emit(depth + 1, f"reserved {reserved.start}{'' if end == reserved.start else f' to {end}'};")
        self.emit(depth, "}")

    def enum(self, depth: int, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.emit(depth, f"enum {enum.name} {{")
        for option in options(enum.options):
            self.emit(depth + 1, f"option {option};")
        for value in enum.value:
            opts = options(value.options)
            suffix = f" [{', '.join(opts)}]" if opts else ""
            self.emit(depth + 1, f"{value.name} = {value.number}{suffix};")
        self.emit(depth, "}")

    def service(self, service: descriptor_pb2.ServiceDescriptorProto) -> None:
        self.emit(0, f"service {service.name} {{")
        for option in options(service.options):
            self.emit(1, f"option {option};")
        for method in service.method:
            request = ("stream " if method.client_streaming else "") + relative(
                method.input_type.lstrip("."), self.proto.package
            )
            response = ("stream " if method.server_streaming else "") + relative(
                method.output_type.lstrip("."), self.proto.package
            )
            opts = options(method.options)
            head = f"rpc {method.name}({request}) returns ({response})"
            if not opts:
                self.emit(1, head + ";")
                continue
            self.emit(1, head + " {")
            for option in opts:
                self.emit(2, f"option {option};")
            self.emit(1, "}")
        self.emit(0, "}")

    def file(self) -> str:
        proto = self.proto
        self.lines = [HEADER.rstrip("\n"), f'syntax = "{proto.syntax or "proto2"}";', ""]
        self.emit(0, f"package {proto.package};")
        self.emit(0, "")
        for dependency in proto.dependency:
            self.emit(0, f'import "{dependency}";')
        if proto.dependency:
            self.emit(0, "")
        for option in options(proto.options):
            self.emit(0, f"option {option};")
        for service in proto.service:
            self.service(service)
            self.emit(0, "")
        for enum in proto.enum_type:
            self.enum(0, enum)
            self.emit(0, "")
        for message in proto.message_type:
            self.message(0, message)
            self.emit(0, "")
        return "\n".join(self.lines).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, metavar="PROTO_DIR", help="write the .proto files under it")
    parser.add_argument("--descriptors", type=Path, metavar="FILE", help="write upstream's FileDescriptorSet")
    args = parser.parse_args(argv)
    files = upstream_files()
    if args.descriptors:
        descriptor_set = descriptor_pb2.FileDescriptorSet(file=[normalise(f) for f in files])
        args.descriptors.write_bytes(descriptor_set.SerializeToString(deterministic=True))
    for proto in files:
        # buf's file options (java_package and the like) are left out: protoc would not add them
        stripped = descriptor_pb2.FileDescriptorProto.FromString(proto.SerializeToString())
        stripped.ClearField("options")
        text = Printer(stripped).file()
        if args.write:
            (args.write / proto.name).parent.mkdir(parents=True, exist_ok=True)
            (args.write / proto.name).write_text(text)
        elif not args.descriptors:
            print(f"// ---- {proto.name}\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
