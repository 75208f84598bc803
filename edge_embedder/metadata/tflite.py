"""TFLite model metadata: read and write the ``M001`` flatbuffer ourselves.

The TFLite metadata schema (``metadata_schema.fbs`` of TFLite Support, schema
1.5) is small and stable, so it is read and written here with the plain
``flatbuffers`` runtime instead of depending on ``tflite-support`` (which needs
numpy<2 and protobuf<4) or MediaPipe's metadata writer (which fails to import
from the current wheel). Only the parts an image embedder needs are modelled:
model name / description / version / author / license, per-tensor name,
description, content (image or feature), image colour space and default size,
normalization options and stats, subgraph custom metadata. Fields we do not
model are ignored on read.

Reading (:func:`read_tflite_metadata`, :class:`MetadataReader`) and writing
(:func:`populate_tflite_metadata`, :class:`MetadataWriter`) are separate, as in
TFLite Support.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import flatbuffers
from flatbuffers import number_types as nt

from ..errors import MetadataError, ModelLoadError
from .flatbuffer import FlatTable
from .model_metadata import (
    ASSOCIATED_FILE_TYPES,
    SCORE_TRANSFORMATIONS,
    AssociatedFile,
    ModelMetadata,
    NormalizationOptions,
    ScoreCalibration,
    TensorMetadata,
)

__all__ = [
    "MetadataReader",
    "MetadataWriter",
    "read_tflite_metadata",
    "populate_tflite_metadata",
    "parse_metadata_buffer",
    "build_metadata_buffer",
    "read_packed_files",
    "METADATA_NAME",
]

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"

_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
_COLOR_SPACE_IDS = {v: k for k, v in _COLOR_SPACES.items()}
# ContentProperties union members.
_CONTENT_FEATURE, _CONTENT_IMAGE = 1, 2
_CONTENT_NAMES = {1: "feature", 2: "image", 3: "bounding_box", 4: "audio"}
# ProcessUnitOptions union members.
_PU_NORMALIZATION, _PU_SCORE_CALIBRATION, _PU_SCORE_THRESHOLDING = 1, 2, 3


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def _check_identifier(buf: bytes, ident: bytes, what: str) -> None:
    if len(buf) < 8:
        raise ModelLoadError(f"{what}: expected a flatbuffer of at least 8 bytes, got {len(buf)}")
    if bytes(buf[4:8]) != ident:
        raise ModelLoadError(
            f"{what}: expected file identifier {ident.decode()!r}, got {bytes(buf[4:8])!r}"
        )


def _tflite_metadata_buffers(model: bytes) -> dict[str, bytes]:
    """The named entries of a TFLite model's ``metadata`` vector, as bytes."""
    _check_identifier(model, TFLITE_IDENTIFIER, "TFLite model")
    root = FlatTable.root(model)
    # Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4,
    # metadata_buffer 5, metadata 6, signature_defs 7.
    buffers = root.tables(4)
    out: dict[str, bytes] = {}
    for entry in root.tables(6):  # Metadata: name 0, buffer 1
        name = entry.string(0) or ""
        idx = entry.scalar(1, nt.Uint32Flags)
        if idx >= len(buffers):
            raise MetadataError(
                f"metadata entry {name!r} points at buffer {idx}, "
                f"but the model has {len(buffers)} buffers"
            )
        buf = buffers[idx]  # Buffer: data 0, offset 1, size 2
        data = buf.bytes_vec(0)
        if data is None:
            offset = buf.scalar(1, nt.Uint64Flags)
            size = buf.scalar(2, nt.Uint64Flags)
            data = bytes(model[offset : offset + size]) if offset > 1 else b""
        out[name] = data
    return out


def _read_tensor(t: FlatTable) -> TensorMetadata:
    # TensorMetadata: name 0, description 1, dimension_names 2, content 3,
    # process_units 4, stats 5, associated_files 6.
    content_name = color_space = default_size = None
    content = t.table(3)
    if content is not None:  # Content: content_properties_type 0, value 1, range 2
        ctype = content.scalar(0, nt.Uint8Flags)
        content_name = _CONTENT_NAMES.get(ctype)
        if ctype == _CONTENT_IMAGE:
            props = content.union(1)
            if props is not None:  # ImageProperties: color_space 0, default_size 1
                color_space = _COLOR_SPACES.get(props.scalar(0, nt.Int8Flags), "UNKNOWN")
                size = props.table(1)
                if size is not None:
                    default_size = (size.scalar(0, nt.Uint32Flags), size.scalar(1, nt.Uint32Flags))
    normalization = calibration = threshold = None
    for unit in t.tables(4):  # ProcessUnit: options_type 0, options 1
        kind, opts = unit.scalar(0, nt.Uint8Flags), unit.union(1)
        if opts is None:
            continue
        if kind == _PU_NORMALIZATION:  # NormalizationOptions: mean 0, std 1
            mean = opts.scalars(0, nt.Float32Flags) or []
            std = opts.scalars(1, nt.Float32Flags) or []
            normalization = NormalizationOptions(tuple(mean), tuple(std))
        elif kind == _PU_SCORE_CALIBRATION:  # ScoreCalibrationOptions: score_transformation 0, default_score 1
            code = opts.scalar(0, nt.Int8Flags)
            if not 0 <= code < len(SCORE_TRANSFORMATIONS):
                raise MetadataError(f"score calibration: unknown score_transformation {code}")
            calibration = ScoreCalibration(SCORE_TRANSFORMATIONS[code], opts.scalar(1, nt.Float32Flags, 0.0))
        elif kind == _PU_SCORE_THRESHOLDING:  # ScoreThresholdingOptions: global_score_threshold 0
            threshold = float(opts.scalar(0, nt.Float32Flags, 0.0))
    stats_min = stats_max = None
    stats = t.table(5)
    if stats is not None:  # Stats: max 0, min 1
        smax, smin = stats.scalars(0, nt.Float32Flags), stats.scalars(1, nt.Float32Flags)
        stats_max = tuple(smax) if smax is not None else None
        stats_min = tuple(smin) if smin is not None else None
    return TensorMetadata(
        name=t.string(0),
        description=t.string(1),
        content=content_name,
        color_space=color_space,
        default_size=default_size,
        normalization=normalization,
        stats_min=stats_min,
        stats_max=stats_max,
        associated_files=_read_files(t.tables(6)),
        score_calibration=calibration,
        score_threshold=threshold,
    )


def _read_files(tables: list[FlatTable]) -> tuple[AssociatedFile, ...]:
    # AssociatedFile: name 0, description 1, type 2, locale 3, version 4.
    out = []
    for f in tables:
        code = f.scalar(2, nt.Int8Flags)
        out.append(AssociatedFile(
            name=f.string(0) or "",
            type=ASSOCIATED_FILE_TYPES[code] if 0 <= code < len(ASSOCIATED_FILE_TYPES) else "UNKNOWN",
            description=f.string(1),
            locale=f.string(3),
            version=f.string(4),
        ))
    return tuple(out)


#: The largest associated file read from a model (a tokenizer.json is a few MB; a zip member claiming
#: more is damage or a zip bomb).
MAX_PACKED_FILE_BYTES = 256 << 20


def read_packed_files(model: bytes, wanted: Sequence[str] | None = None) -> dict[str, bytes]:
    """The files of the zip archive appended to a TFLite flatbuffer (empty when there is none).

    ``wanted``: read only these members (the metadata's associated files); None reads every one.

    Raises:
      MetadataError: a zip is there but a member is damaged (CRC mismatch, truncated, encrypted,
        an unknown compression, larger than :data:`MAX_PACKED_FILE_BYTES`), or two members have
        the same name (which one the metadata means would be a guess).
    """
    try:
        z = zipfile.ZipFile(io.BytesIO(model))
    except zipfile.BadZipFile:
        return {}
    except (zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError, struct.error) as exc:
        raise MetadataError(f"the model's packed associated files cannot be read (the zip is damaged): {exc}") from None
    out: dict[str, bytes] = {}
    with z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        names = [i.filename for i in infos]
        dupes = sorted({n for n in names if names.count(n) > 1 and (wanted is None or n in wanted)})
        if dupes:
            raise MetadataError(f"the model's packed zip holds more than one file named {dupes}: the metadata's "
                                "file is ambiguous (the model file was edited or damaged)")
        for info in infos:
            if wanted is not None and info.filename not in wanted:
                continue
            if info.file_size > MAX_PACKED_FILE_BYTES:
                raise MetadataError(f"the packed file {info.filename!r} claims {info.file_size} bytes, more than "
                                    f"{MAX_PACKED_FILE_BYTES} (the model file is damaged)")
            try:
                out[info.filename] = z.read(info)
            except zipfile.BadZipFile as exc:  # "Bad CRC-32 for file ...", bad local header
                raise MetadataError(f"the packed file {info.filename!r} is damaged ({exc}): the model file is corrupt "
                                    "(a bad download or storage?)") from None
            except (RuntimeError, NotImplementedError, OSError, EOFError, ValueError, zlib.error, struct.error) as exc:
                raise MetadataError(f"the packed file {info.filename!r} cannot be read ({type(exc).__name__}: {exc}): "
                                    "the model file is damaged") from None
    return out


def parse_metadata_buffer(buf: bytes) -> ModelMetadata:
    """Parse an ``M001`` metadata flatbuffer."""
    try:
        _check_identifier(buf, METADATA_IDENTIFIER, "TFLite metadata")
    except ModelLoadError as exc:
        raise MetadataError(str(exc)) from None
    try:
        root = FlatTable.root(buf)
        # ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3,
        # author 4, license 5, associated_files 6, min_parser_version 7.
        subgraphs = root.tables(3)
        inputs: list[TensorMetadata] = []
        outputs: list[TensorMetadata] = []
        custom: list[tuple[str, bytes]] = []
        if subgraphs:
            sg = subgraphs[0]
            # SubGraphMetadata: name 0, description 1, input_tensor_metadata 2,
            # output_tensor_metadata 3, associated_files 4, input_process_units 5,
            # output_process_units 6, input_tensor_groups 7, output_tensor_groups 8,
            # custom_metadata 9.
            inputs = [_read_tensor(t) for t in sg.tables(2)]
            outputs = [_read_tensor(t) for t in sg.tables(3)]
            for c in sg.tables(9):  # CustomMetadata: name 0, data 1
                custom.append((c.string(0) or "", c.bytes_vec(1) or b""))
        return ModelMetadata(
            name=root.string(0),
            description=root.string(1),
            version=root.string(2),
            author=root.string(4),
            license=root.string(5),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            custom_metadata=tuple(custom),
            min_parser_version=root.string(7),
            associated_files=_read_files(root.tables(6)),
        )
    except (IndexError, struct.error, ValueError, TypeError, OverflowError) as exc:
        raise MetadataError(f"TFLite metadata flatbuffer is corrupt: {exc}") from None


def read_tflite_metadata(model: bytes | bytearray | memoryview) -> ModelMetadata | None:
    """The metadata of a TFLite model buffer, or None when it has none.

    Raises:
      ModelLoadError: the buffer is not a TFLite flatbuffer.
      MetadataError: the metadata entry exists but cannot be parsed.
    """
    model = bytes(model) if not isinstance(model, bytes) else model
    try:
        entries = _tflite_metadata_buffers(model)
    except (ModelLoadError, MetadataError):
        raise
    except (IndexError, struct.error, ValueError, TypeError, OverflowError) as exc:
        raise ModelLoadError(f"TFLite model flatbuffer is corrupt: {exc}") from None
    buf = entries.get(METADATA_NAME)
    if buf is None:
        return None
    md = parse_metadata_buffer(buf)
    wanted = [f.name for f in md.all_associated_files()]
    if not wanted:
        return md
    packed = read_packed_files(model, wanted)
    missing = [n for n in wanted if n not in packed]
    if missing:
        names = _zip_names(model)
        if names is None:
            raise MetadataError(f"the metadata names associated files {missing}, but the model file carries no "
                                "readable zip of packed files (a truncated or damaged file?)")
        raise MetadataError(f"the metadata names associated files {missing} that are not packed in the model file "
                            f"(packed: {sorted(names)})")
    from dataclasses import replace

    return replace(md, files=tuple((n, packed[n]) for n in wanted))


def _zip_names(model: bytes) -> list[str] | None:
    """The member names of the appended zip, None when there is no readable one."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as z:
            return [i.filename for i in z.infolist() if not i.is_dir()]
    except Exception:
        return None


class MetadataReader:
    """Reads the metadata of a TFLite model (the MetadataDisplayer role)."""

    def __init__(self, model: bytes) -> None:
        self._model = model
        self.metadata = read_tflite_metadata(model)

    @classmethod
    def from_file(cls, path: str | Path) -> "MetadataReader":
        return cls(Path(path).read_bytes())

    @classmethod
    def from_buffer(cls, buf: bytes) -> "MetadataReader":
        return cls(bytes(buf))

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(None if self.metadata is None else self.metadata.to_dict(), indent=indent)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _min_parser_version(md: ModelMetadata) -> str:
    # Versions from the schema's history: custom_metadata arrived in 1.5.0;
    # everything else we write exists since 1.0.0.
    return "1.5.0" if md.custom_metadata else "1.0.0"


def _float_vector(b: flatbuffers.Builder, values: Sequence[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _offset_vector(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def _build_tensor(b: flatbuffers.Builder, t: TensorMetadata) -> int:
    name = b.CreateString(t.name) if t.name is not None else None
    desc = b.CreateString(t.description) if t.description is not None else None

    content = None
    if t.content in ("image", "feature") or t.color_space is not None:
        if t.content == "feature":
            b.StartObject(0)  # FeatureProperties {}
            props, ptype = b.EndObject(), _CONTENT_FEATURE
        else:
            size = None
            if t.default_size is not None:
                b.StartObject(2)  # ImageSize: width 0, height 1
                b.PrependUint32Slot(0, int(t.default_size[0]), 0)
                b.PrependUint32Slot(1, int(t.default_size[1]), 0)
                size = b.EndObject()
            cs = _COLOR_SPACE_IDS.get(t.color_space or "UNKNOWN")
            if cs is None:
                raise MetadataError(
                    f"color_space: expected one of {sorted(_COLOR_SPACE_IDS)}, got {t.color_space!r}"
                )
            b.StartObject(2)  # ImageProperties
            b.PrependInt8Slot(0, cs, 0)
            if size is not None:
                b.PrependUOffsetTRelativeSlot(1, size, 0)
            props, ptype = b.EndObject(), _CONTENT_IMAGE
        b.StartObject(3)  # Content
        b.PrependUint8Slot(0, ptype, 0)
        b.PrependUOffsetTRelativeSlot(1, props, 0)
        content = b.EndObject()

    unit_list = []
    if t.normalization is not None:
        mean = _float_vector(b, t.normalization.mean)
        std = _float_vector(b, t.normalization.std)
        b.StartObject(2)  # NormalizationOptions
        b.PrependUOffsetTRelativeSlot(0, mean, 0)
        b.PrependUOffsetTRelativeSlot(1, std, 0)
        unit_list.append((_PU_NORMALIZATION, b.EndObject()))
    if t.score_calibration is not None:
        b.StartObject(2)  # ScoreCalibrationOptions
        b.PrependInt8Slot(0, SCORE_TRANSFORMATIONS.index(t.score_calibration.transformation), 0)
        b.PrependFloat32Slot(1, float(t.score_calibration.default_score), 0.0)
        unit_list.append((_PU_SCORE_CALIBRATION, b.EndObject()))
    if t.score_threshold is not None:
        b.StartObject(1)  # ScoreThresholdingOptions
        b.PrependFloat32Slot(0, float(t.score_threshold), 0.0)
        unit_list.append((_PU_SCORE_THRESHOLDING, b.EndObject()))
    units = None
    if unit_list:
        offsets = []
        for kind, opts in unit_list:
            b.StartObject(2)  # ProcessUnit
            b.PrependUint8Slot(0, kind, 0)
            b.PrependUOffsetTRelativeSlot(1, opts, 0)
            offsets.append(b.EndObject())
        units = _offset_vector(b, offsets)
    files = _build_files(b, t.associated_files)

    stats = None
    if t.stats_min is not None or t.stats_max is not None:
        smax = _float_vector(b, t.stats_max) if t.stats_max is not None else None
        smin = _float_vector(b, t.stats_min) if t.stats_min is not None else None
        b.StartObject(2)  # Stats: max 0, min 1
        if smax is not None:
            b.PrependUOffsetTRelativeSlot(0, smax, 0)
        if smin is not None:
            b.PrependUOffsetTRelativeSlot(1, smin, 0)
        stats = b.EndObject()

    b.StartObject(7)  # TensorMetadata
    if name is not None:
        b.PrependUOffsetTRelativeSlot(0, name, 0)
    if desc is not None:
        b.PrependUOffsetTRelativeSlot(1, desc, 0)
    if content is not None:
        b.PrependUOffsetTRelativeSlot(3, content, 0)
    if units is not None:
        b.PrependUOffsetTRelativeSlot(4, units, 0)
    if stats is not None:
        b.PrependUOffsetTRelativeSlot(5, stats, 0)
    if files is not None:
        b.PrependUOffsetTRelativeSlot(6, files, 0)
    return b.EndObject()


def _build_files(b: flatbuffers.Builder, files: Sequence[AssociatedFile]) -> int | None:
    if not files:
        return None
    offsets = []
    for f in files:
        strs = {i: b.CreateString(v) for i, v in ((0, f.name), (1, f.description), (3, f.locale), (4, f.version))
                if v is not None}
        b.StartObject(5)  # AssociatedFile
        for i, off in strs.items():
            b.PrependUOffsetTRelativeSlot(i, off, 0)
        b.PrependInt8Slot(2, ASSOCIATED_FILE_TYPES.index(f.type), 0)
        offsets.append(b.EndObject())
    return _offset_vector(b, offsets)


def build_metadata_buffer(md: ModelMetadata) -> bytes:
    """Serialise ``md`` as an ``M001`` metadata flatbuffer."""
    b = flatbuffers.Builder(1024)
    inputs = _offset_vector(b, [_build_tensor(b, t) for t in md.inputs])
    outputs = _offset_vector(b, [_build_tensor(b, t) for t in md.outputs])
    custom = None
    if md.custom_metadata:
        entries = []
        for key, data in md.custom_metadata:
            key_off = b.CreateString(key)
            # data:[ubyte] (force_align: 16)
            b.StartVector(1, len(data), 16)
            b.head = b.head - len(data)
            b.Bytes[b.head : b.head + len(data)] = data
            data_off = b.EndVector()
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(0, key_off, 0)
            b.PrependUOffsetTRelativeSlot(1, data_off, 0)
            entries.append(b.EndObject())
        custom = _offset_vector(b, entries)
    b.StartObject(10)  # SubGraphMetadata
    b.PrependUOffsetTRelativeSlot(2, inputs, 0)
    b.PrependUOffsetTRelativeSlot(3, outputs, 0)
    if custom is not None:
        b.PrependUOffsetTRelativeSlot(9, custom, 0)
    subgraph = _offset_vector(b, [b.EndObject()])

    strings = {
        0: md.name,
        1: md.description,
        2: md.version,
        4: md.author,
        5: md.license,
        7: md.min_parser_version or _min_parser_version(md),
    }
    offs = {i: b.CreateString(s) for i, s in strings.items() if s is not None}
    model_files = _build_files(b, md.associated_files)
    b.StartObject(8)  # ModelMetadata
    for i, off in offs.items():
        b.PrependUOffsetTRelativeSlot(i, off, 0)
    b.PrependUOffsetTRelativeSlot(3, subgraph, 0)
    if model_files is not None:
        b.PrependUOffsetTRelativeSlot(6, model_files, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def populate_tflite_metadata(model: bytes, md: ModelMetadata) -> bytes:
    """Return a copy of the TFLite ``model`` carrying ``md`` as its metadata.

    An existing ``TFLITE_METADATA`` entry is replaced, and so are the packed
    associated files: every file ``md`` names must be in ``md.files``; they are
    written as a zip archive (stored, not compressed) appended to the
    flatbuffer, as TFLite Support's MetadataPopulator does. The number of
    input and output tensor metadata must match the model's subgraph (as
    TFLite Support requires). Uses the TFLite schema bindings shipped with
    ``ai-edge-litert``. When ``md`` holds a checksum entry
    (:data:`~edge_embedder.metadata.CHECKSUM_KEY`, e.g. read from a file the
    converters wrote), it is recomputed for the new file (:func:`seal_checksum`).
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MetadataError(
            "writing TFLite metadata needs the 'ai-edge-litert' package (pip install ai-edge-litert)"
        ) from exc
    _check_identifier(model, TFLITE_IDENTIFIER, "TFLite model")
    import numpy as np

    mt = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    # Large files (e.g. from ai-edge-quantizer) keep buffers after the flatbuffer,
    # addressed by offset/size; re-packing would lose them, so bring them inline.
    for buf in mt.buffers or []:
        offset = int(getattr(buf, "offset", 0) or 0)
        if offset > 1:
            buf.data = np.frombuffer(model, dtype=np.uint8, count=int(buf.size), offset=offset)
            buf.offset, buf.size = 0, 0
    sg = mt.subgraphs[0]
    n_in, n_out = len(sg.inputs), len(sg.outputs)
    if len(md.inputs) != n_in:
        raise MetadataError(
            f"The number of input tensors ({n_in}) should match the number of "
            f"input tensor metadata ({len(md.inputs)})"
        )
    if len(md.outputs) != n_out:
        raise MetadataError(
            f"The number of output tensors ({n_out}) should match the number of "
            f"output tensor metadata ({len(md.outputs)})"
        )
    named = [f.name for f in md.all_associated_files()]
    contents = dict(md.files)
    missing = [n for n in named if n not in contents]
    if missing:
        raise MetadataError(f"associated files {missing} are named in the metadata but their bytes are not in md.files")
    from .checksum import CHECKSUM_KEY, CHECKSUM_PLACEHOLDER, seal_checksum

    sealed = md.custom(CHECKSUM_KEY) is not None
    if sealed:  # a record (maybe of the file this metadata was read from): recomputed for the new file
        from dataclasses import replace as _replace

        md = _replace(md, custom_metadata=tuple((k, CHECKSUM_PLACEHOLDER if k == CHECKSUM_KEY else v)
                                                for k, v in md.custom_metadata))
    payload = build_metadata_buffer(md)
    data = np.frombuffer(payload, dtype=np.uint8)
    mt.metadata = mt.metadata or []
    existing = [m for m in mt.metadata if _name(m.name) == METADATA_NAME]
    if existing:  # replace in place, so repeated writes do not grow the file
        mt.buffers[existing[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        mt.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(mt.buffers) - 1
        mt.metadata.append(entry)
    share_quantization_tables(mt)  # several signatures: keep one table per shared weight (as the input had it)
    b = flatbuffers.Builder(len(model) + len(payload) + 1024)
    b.Finish(mt.Pack(b), file_identifier=TFLITE_IDENTIFIER)
    out = bytes(b.Output())  # a fresh flatbuffer: any zip the input carried is gone
    if named:
        sink = io.BytesIO()
        sink.write(out)
        with zipfile.ZipFile(sink, "a", compression=zipfile.ZIP_STORED) as z:
            for name in named:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: byte-identical rebuilds
                info.external_attr = 0o644 << 16
                z.writestr(info, contents[name])
        out = sink.getvalue()
    return seal_checksum(out) if sealed else out


def share_quantization_tables(mt: Any) -> int:
    """Make tensors of different subgraphs that use one weight buffer with equal quantization parameters share one
    ``QuantizationParameters`` table when ``mt`` (a schema ``ModelT``) is packed; return how many now share.

    A ``.tflite`` with several signatures has one tensor per subgraph for each shared weight; unpacked and packed
    again with the flatbuffers object API, each gets its own copy of the per-channel scales and (int64) zero points:
    +15 MB on a 67 MB dynamic-int8 CLIP B/32 text tower with 10 signatures. Flatbuffers may point several tables
    at one: packed once, the shared object returns the same offset.
    """
    import numpy as np

    first: dict[tuple, Any] = {}
    shared = 0
    for sg in mt.subgraphs or []:
        for t in sg.tensors or []:
            q = t.quantization
            if q is None or not t.buffer or q.scale is None or len(q.scale) < 2:
                continue
            key = (int(t.buffer), np.asarray(q.scale, np.float32).tobytes(),
                   np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64).tobytes(),
                   int(q.quantizedDimension or 0))
            if key in first:
                t.quantization = first[key]
                shared += 1
            else:
                first[key] = q
    if shared:
        for q in first.values():
            q.Pack = _pack_once(q.Pack)
    return shared


def _pack_once(pack: Any) -> Any:
    """``pack(builder)`` that returns the first offset again for the same builder."""
    done: dict[int, int] = {}

    def packed(builder: Any) -> int:
        if id(builder) not in done:
            done.clear()
            done[id(builder)] = pack(builder)
        return done[id(builder)]

    return packed


def _name(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)


class MetadataWriter:
    """Writes metadata into a TFLite model (the MetadataPopulator role)."""

    def __init__(self, model: bytes) -> None:
        self._model = bytes(model)

    @classmethod
    def from_file(cls, path: str | Path) -> "MetadataWriter":
        return cls(Path(path).read_bytes())

    @classmethod
    def from_buffer(cls, buf: bytes) -> "MetadataWriter":
        return cls(buf)

    def populate(self, md: ModelMetadata) -> bytes:
        return populate_tflite_metadata(self._model, md)


