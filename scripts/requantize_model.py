"""Writes a GGUF model's weights again in another type: every 2-D weight
(token embedding and LM head included) dequantised to float32 with gguf-py
and stored as TYPE; 1-D tensors (norms) stay float32; every metadata key is
copied, general.file_type set to match. The same input gives the same bytes.

Quantisation as a "fine-tune" of its own (issue 19): map the original and
the re-quantised copy and `neuronlens compare` them to see how many neurons
keep their top token. `--type f32` writes the original's exact values (a
Q4_1 block dequantises to float32 exactly), so its atlas equals the
original's.

With --keep-embedding the token embedding and LM head (token_embd.weight,
output.weight) are copied byte for byte in their own type: only the layers'
weights change, so a comparison sees the neurons move, not the decoder.

usage: .venv/bin/python scripts/requantize_model.py SRC.gguf OUT.gguf --type f32|f16|q8_0|q4_0|q4_1
       [--keep-embedding]
"""
import argparse
import sys

import numpy as np
import gguf

TYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
    "q4_1": (gguf.GGMLQuantizationType.Q4_1, gguf.LlamaFileType.MOSTLY_Q4_1),
}


def copy_metadata(reader, writer, file_type):
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type=sub_type)
    writer.add_file_type(int(file_type))


EMBEDDING = ("token_embd.weight", "output.weight")


def requantize(src, out, type_name, keep_embedding=False):
    qtype, file_type = TYPES[type_name]
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(out, arch)
    copy_metadata(reader, writer, file_type)
    for t in reader.tensors:
        if keep_embedding and t.name in EMBEDDING:
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
            continue
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)  # [rows, cols]
        if values.ndim < 2 or qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(t.name, values)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(t.name, values.astype(np.float16))
        else:
            writer.add_tensor(t.name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--type", required=True, choices=sorted(TYPES))
    parser.add_argument("--keep-embedding", action="store_true")
    args = parser.parse_args()
    if args.src == args.out:
        sys.exit("requantize_model: the output must not be the input")
    requantize(args.src, args.out, args.type, args.keep_embedding)


if __name__ == "__main__":
    main()
