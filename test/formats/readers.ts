/**
 * Independent readers for our outputs: pyarrow and DuckDB for Parquet, fastavro for Avro.
 * Each prints JSON with file facts and every column normalized as `fixtures.normalize` does.
 */
import { runPython } from '../support/python.js';
import { LARGE_TABLE_PYTHON } from './fixtures.js';

export type Cell = string | boolean | null;

export interface ReadBack {
  rows: number;
  /** Column name -> [reader's type name]: pyarrow type, or the Avro field's value type as JSON. */
  types: Record<string, string>;
  columns: Record<string, Cell[]>;
}

export interface ParquetReadBack extends ReadBack {
  rowGroups: number;
  rowGroupRows: number[];
  /** Compression codec of every column chunk, as pyarrow names it (e.g. SNAPPY). */
  codecs: string[];
  /** Column types as DuckDB describes them. */
  duckdbTypes: Record<string, string>;
}

export interface AvroReadBack extends ReadBack {
  codec: string;
  blocks: number;
  /** The writer schema exactly as stored in the file header. */
  schema: { name: string; fields: { name: string; type: unknown; default?: unknown; doc?: string; aliases?: string[] }[] };
}

const COMMON = `
import sys, json, struct, datetime
def dbl(v):
    return None if v is None else struct.pack('<d', v).hex()
${LARGE_TABLE_PYTHON}
def first_mismatch(got, want):
    if got is None:
        return -1
    for i in range(max(len(got), len(want))):
        if i >= len(got) or i >= len(want) or got[i] != want[i]:
            return i
    return None
def emit(result, columns):
    if len(sys.argv) > 2 and sys.argv[2] == 'large':
        # Instead of the data, report per column the first row that differs from the formula.
        expected = expected_large(result['rows'])
        result['columns'] = {}
        result['firstMismatch'] = {name: first_mismatch(columns.get(name), want) for name, want in expected.items()}
    else:
        result['columns'] = columns
    print(json.dumps(result))
`;

const PARQUET = `${COMMON}
import pyarrow as pa, pyarrow.parquet as pq, duckdb
path = sys.argv[1]
table = pq.read_table(path)
meta = pq.ParquetFile(path).metadata
def norm(col):
    t = col.type
    if pa.types.is_date32(t):
        return [None if v is None else str(v) for v in col.cast(pa.int32()).to_pylist()]
    if pa.types.is_timestamp(t) or pa.types.is_int64(t):
        return [None if v is None else str(v) for v in col.cast(pa.int64()).to_pylist()]
    if pa.types.is_float64(t):
        return [dbl(v) for v in col.to_pylist()]
    return col.to_pylist()
rgs = [meta.row_group(i) for i in range(meta.num_row_groups)]
con = duckdb.connect()
described = con.execute('DESCRIBE SELECT * FROM read_parquet(?)', [path]).fetchall()
emit({
    'rows': table.num_rows,
    'types': {f.name: str(f.type) for f in table.schema},
    'rowGroups': meta.num_row_groups,
    'rowGroupRows': [rg.num_rows for rg in rgs],
    'codecs': sorted({rg.column(j).compression for rg in rgs for j in range(rg.num_columns)}),
    'duckdbTypes': {row[0]: row[1] for row in described},
}, {name: norm(table.column(name)) for name in table.column_names})
`;

const AVRO = `${COMMON}
import io, zlib, fastavro, pyarrow as pa
from fastavro import read as fastavro_read

def read_varint(fo):
    shift = result = 0
    while True:
        b = fo.read(1)[0]
        result |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1)

def snappy_block(fo):
    # fastavro needs cramjam for snappy; decode with Arrow's C++ snappy instead and check the CRC.
    stored = fo.read(read_varint(fo))
    data, crc = stored[:-4], stored[-4:]
    size = shift = i = 0
    while True:
        b = data[i]; i += 1
        size |= (b & 0x7f) << shift; shift += 7
        if not b & 0x80:
            break
    raw = pa.decompress(data, decompressed_size=size, codec='snappy').to_pybytes()
    if struct.unpack('>I', crc)[0] != zlib.crc32(raw):
        raise ValueError('snappy block CRC mismatch')
    return io.BytesIO(raw)

fastavro_read.BLOCK_READERS['snappy'] = snappy_block
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
MICRO = datetime.timedelta(microseconds=1)

def norm(value_type, v):
    if v is None:
        return None
    logical = value_type.get('logicalType') if isinstance(value_type, dict) else None
    if logical == 'date':
        return str((v - datetime.date(1970, 1, 1)).days)
    if logical == 'timestamp-micros':
        assert v.utcoffset() == datetime.timedelta(0), v
        return str((v - EPOCH) // MICRO)
    if value_type == 'long':
        return str(v)
    if value_type == 'double':
        return dbl(v)
    return v

with open(sys.argv[1], 'rb') as f:
    reader = fastavro.block_reader(f)
    schema = json.loads(reader.metadata['avro.schema'])
    codec = reader.metadata.get('avro.codec', 'null')
    fastavro.parse_schema(schema)
    blocks = 0
    records = []
    for block in reader:
        blocks += 1
        records.extend(block)
value_types = {field['name']: [t for t in field['type'] if t != 'null'][0] for field in schema['fields']}
emit({
    'rows': len(records),
    'types': {name: json.dumps(t) for name, t in value_types.items()},
    'codec': codec,
    'blocks': blocks,
    'schema': schema,
}, {name: [norm(t, r[name]) for r in records] for name, t in value_types.items()})
`;

export interface LargeCheck {
  firstMismatch: Record<string, number | null>;
}

export async function readParquet(path: string): Promise<ParquetReadBack> {
  return JSON.parse(await runPython(PARQUET, [path])) as ParquetReadBack;
}

export async function readAvro(path: string): Promise<AvroReadBack> {
  return JSON.parse(await runPython(AVRO, [path])) as AvroReadBack;
}

/** Reads a file written from `largeBatches` and compares every cell with the formula, in Python. */
export async function checkLargeParquet(path: string): Promise<ParquetReadBack & LargeCheck> {
  return JSON.parse(await runPython(PARQUET, [path, 'large'])) as ParquetReadBack & LargeCheck;
}

export async function checkLargeAvro(path: string): Promise<AvroReadBack & LargeCheck> {
  return JSON.parse(await runPython(AVRO, [path, 'large'])) as AvroReadBack & LargeCheck;
}
