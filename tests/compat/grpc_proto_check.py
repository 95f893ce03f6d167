"""Checks QuiverDB's `proto/qdrant.proto` against the gRPC interface shipped in the real `qdrant-client` package:
every service method QuiverDB serves exists there with the same request and reply types; every field QuiverDB
declares has the same number, label and a wire-compatible type; and every field a *request* message has in
Qdrant's interface is declared by QuiverDB (so no request field is ever skipped silently).

Usage: python3 grpc_proto_check.py DESCRIPTOR_SET_FILE   (written by crates/quiver-server/tests/grpc.rs)
"""

import sys

import qdrant_client.grpc  # noqa: F401  (registers Qdrant's descriptors in the default pool)
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FieldDescriptor as F

theirs = descriptor_pool.Default()
fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(sys.argv[1], "rb").read())
ours = descriptor_pool.DescriptorPool()
for f in fds.file:
    ours.Add(f)
errors = []


def compatible(a, b) -> bool:
    if a.type == b.type:
        if a.type != F.TYPE_MESSAGE:
            return True
        if a.message_type.full_name == "qdrant.Unsupported":
            return True
        if a.message_type.GetOptions().map_entry:
            return b.message_type.GetOptions().map_entry and all(
                compatible(x, y) for x, y in zip(a.message_type.fields, b.message_type.fields))
        return a.message_type.name == b.message_type.name
    # Enums are declared int32 on our side: the same varint on the wire.
    return a.type == F.TYPE_INT32 and b.type == F.TYPE_ENUM


def check_message(ours_msg, request: bool, seen: set) -> None:
    if ours_msg.full_name in seen or ours_msg.full_name == "qdrant.Unsupported" or ours_msg.GetOptions().map_entry:
        return
    seen.add(ours_msg.full_name)
    try:
        their_msg = theirs.FindMessageTypeByName(ours_msg.full_name)
    except KeyError:
        errors.append(f"{ours_msg.full_name}: not in Qdrant's interface")
        return
    by_name = {f.name: f for f in their_msg.fields}
    for f in ours_msg.fields:
        t = by_name.get(f.name)
        if t is None:
            errors.append(f"{ours_msg.full_name}.{f.name}: not in Qdrant's interface")
            continue
        if f.number != t.number:
            errors.append(f"{ours_msg.full_name}.{f.name}: number {f.number}, Qdrant's is {t.number}")
        if f.is_repeated != t.is_repeated:
            errors.append(f"{ours_msg.full_name}.{f.name}: repeated differs")
        if not compatible(f, t):
            errors.append(f"{ours_msg.full_name}.{f.name}: type differs from Qdrant's")
        if f.type == F.TYPE_MESSAGE:
            inner = f.message_type
            if inner.GetOptions().map_entry:
                inner = inner.fields_by_name["value"].message_type
            if inner is not None:
                check_message(inner, request, seen)
    if request:
        ours_names = {f.name for f in ours_msg.fields}
        for t in their_msg.fields:
            if t.name not in ours_names:
                errors.append(f"{ours_msg.full_name}.{t.name} (field {t.number}): a request field QuiverDB would skip")


checked = 0
for f in fds.file:
    fd = ours.FindFileByName(f.name)
    for svc in fd.services_by_name.values():
        their_svc = theirs.FindServiceByName(svc.full_name)
        for m in svc.methods:
            t = their_svc.methods_by_name.get(m.name)
            if t is None:
                errors.append(f"{svc.name}.{m.name}: not in Qdrant's interface")
                continue
            if (m.input_type.full_name, m.output_type.full_name) != (t.input_type.full_name, t.output_type.full_name):
                errors.append(f"{svc.name}.{m.name}: types differ from Qdrant's")
            check_message(m.input_type, True, set())
            check_message(m.output_type, False, set())
            checked += 1

if checked == 0:
    errors.append("no service methods found in the descriptor set")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"grpc proto check: {checked} methods agree with qdrant-client's interface")
