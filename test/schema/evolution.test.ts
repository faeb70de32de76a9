import { expect } from 'chai';
import { SchemaInference } from '../../src/csv/infer.js';
import { BatchBuilder } from '../../src/csv/batches.js';
import { evolve, fits, widen, type Evolution, type EvolutionMode, type FileColumn } from '../../src/schema/evolution.js';
import { COLUMN_TYPES, type Column, type ColumnType } from '../../src/types.js';
import { seededRandom } from '../support/random.js';

/** A file column with values (inferred, `empty` when it had none) or pinned. */
function col(name: string, type: ColumnType, flags: { empty?: boolean; pinned?: boolean } = {}): FileColumn {
  return { name, type, empty: flags.empty ?? false, pinned: flags.pinned ?? false };
}

function cols(text: string): Column[] {
  return text.split(/,\s*/).map((pair) => {
    const [name, type] = pair.split(':');
    return { name: name!, type: type as ColumnType };
  });
}

function written(evolution: Evolution): string {
  if (evolution.outcome === 'refuse') throw new Error(`refused: ${evolution.reason}`);
  return evolution.written.map((column) => `${column.name}:${column.type}`).join(', ');
}

function registered(evolution: Evolution): string {
  if (evolution.outcome !== 'write') throw new Error(`not written: ${evolution.outcome}`);
  return evolution.registered.map((column) => `${column.name}:${column.type}`).join(', ');
}

describe('dataset schema evolution rules', () => {
  describe('the type lattice', () => {
    it('a type fits itself, int64 fits double, date fits timestamp, anything fits string, nothing else', () => {
      const expected: Record<ColumnType, ColumnType[]> = {
        int64: ['int64', 'double', 'string'],
        double: ['double', 'string'],
        boolean: ['boolean', 'string'],
        date: ['date', 'timestamp', 'string'],
        timestamp: ['timestamp', 'string'],
        string: ['string'],
      };
      for (const found of COLUMN_TYPES) {
        const into = COLUMN_TYPES.filter((target) => fits(found, target));
        expect(into, `${found} fits`).to.deep.equal(expected[found]);
      }
    });

    it('widen joins two types: int64 → double, date → timestamp, any other pair → string, never narrower', () => {
      expect(widen('int64', 'double')).to.equal('double');
      expect(widen('double', 'int64')).to.equal('double');
      expect(widen('date', 'timestamp')).to.equal('timestamp');
      expect(widen('timestamp', 'date')).to.equal('timestamp');
      expect(widen('int64', 'boolean')).to.equal('string');
      expect(widen('double', 'date')).to.equal('string');
      expect(widen('boolean', 'string')).to.equal('string');
      expect(widen('string', 'int64')).to.equal('string');
      for (const a of COLUMN_TYPES) {
        for (const b of COLUMN_TYPES) {
          const joined = widen(a, b);
          expect(fits(a, joined) && fits(b, joined), `${a} ∨ ${b} = ${joined} holds both`).to.equal(true);
          expect(widen(b, a), 'commutative').to.equal(joined);
        }
      }
    });

    it('fits() agrees with the engine: a column inferred as T converts under type R exactly when T fits R (or it is empty)', () => {
      // Values of every kind inference knows, mixed at random into columns; the conversion of pass 2
      // (the batch builder with fixed types) is the judge, so the rules can never promise a fit the engine then refuses.
      const pool = ['', '', '7', '-12', '9223372036854775807', '2.5', '1e3', 'true', 'FALSE', '2024-02-29', '2024-02-29T10:00:00Z', '2024-01-01 08:30', 'abc', '007', 'NaN'];
      const random = seededRandom(15);
      for (let trial = 0; trial < 400; trial++) {
        const size = 1 + Math.floor(random() * 4);
        const values = Array.from({ length: size }, () => pool[Math.floor(random() * pool.length)]!);
        const rows = values.map((value) => [value]);
        const inference = new SchemaInference(1);
        inference.observe(rows);
        const [found] = inference.types();
        const [empty] = inference.emptyColumns();
        for (const target of COLUMN_TYPES) {
          let converts = true;
          try {
            const judge = new BatchBuilder(['c'], [{ source: 0, type: target }], { rows: 1000, bytes: 1 << 20 }, 'SCHEMA_MISMATCH');
            judge.add({ rows, firstRow: 1, lines: rows.map((_, i) => i + 2) });
            judge.finish();
          } catch {
            converts = false;
          }
          expect(empty || fits(found!, target), `${JSON.stringify(values)} (${empty ? 'empty' : found}) as ${target}`).to.equal(converts);
        }
      }
    });
  });

  describe('the first file of a dataset', () => {
    it('registers its inferred columns in its own order; an all-empty column registers as string', () => {
      const evolution = evolve(undefined, [col('id', 'int64'), col('amount', 'double'), col('note', 'string', { empty: true })], 'add-columns');
      expect(registered(evolution)).to.equal('id:int64, amount:double, note:string');
      expect(written(evolution)).to.equal('id:int64, amount:double, note:string');
      expect(evolution.outcome === 'write' && evolution.changes).to.deep.equal([{ kind: 'registered', columns: cols('id:int64, amount:double, note:string') }]);
    });

    it('registers even under strict (there is nothing to differ from yet)', () => {
      expect(registered(evolve(undefined, [col('a', 'boolean')], 'strict'))).to.equal('a:boolean');
    });
  });

  describe('later files take the registered types wherever their values fit', () => {
    const dataset = cols('id:int64, amount:double, note:string, day:timestamp');

    it('an all-empty column, integers in a double column, a date in a timestamp column, digits in a string column: no change', () => {
      const evolution = evolve(
        dataset,
        [col('id', 'string', { empty: true }), col('amount', 'int64'), col('note', 'int64'), col('day', 'date')],
        'add-columns',
      );
      expect(evolution.outcome).to.equal('write');
      expect(written(evolution)).to.equal('id:int64, amount:double, note:string, day:timestamp');
      expect(evolution.outcome === 'write' && evolution.changes).to.deep.equal([]);
    });

    it('writes in the registered order whatever the file\'s order, each written column reading its own file column', () => {
      const evolution = evolve(dataset, [col('day', 'date'), col('note', 'string'), col('amount', 'double'), col('id', 'int64')], 'strict');
      expect(written(evolution)).to.equal('id:int64, amount:double, note:string, day:timestamp');
      expect(evolution.outcome === 'write' && evolution.sourceColumns).to.deep.equal([3, 2, 1, 0]);
    });

    it('a registered column the file lacks is written as nulls (-1) and stays registered', () => {
      const evolution = evolve(dataset, [col('amount', 'int64'), col('note', 'string')], 'add-columns');
      expect(written(evolution)).to.equal('id:int64, amount:double, note:string, day:timestamp');
      expect(evolution.outcome === 'write' && evolution.sourceColumns).to.deep.equal([-1, 0, 1, -1]);
      expect(registered(evolution)).to.equal('id:int64, amount:double, note:string, day:timestamp');
    });

    it('the issue\'s three files: note string after all-empty, region appended, id nulls in file 3', () => {
      const first = evolve(undefined, [col('id', 'int64'), col('amount', 'double'), col('note', 'string', { empty: true })], 'add-columns');
      const afterFirst = first.outcome === 'write' ? first.registered : [];
      const second = evolve(afterFirst, [col('id', 'int64'), col('amount', 'double'), col('note', 'int64'), col('region', 'string')], 'add-columns');
      expect(written(second)).to.equal('id:int64, amount:double, note:string, region:string');
      expect(second.outcome === 'write' && second.changes).to.deep.equal([{ kind: 'column-added', column: 'region', type: 'string' }]);
      const third = evolve(second.outcome === 'write' ? second.registered : [], [col('amount', 'int64'), col('note', 'string'), col('region', 'string')], 'add-columns');
      expect(written(third)).to.equal('id:int64, amount:double, note:string, region:string');
      expect(third.outcome === 'write' && third.sourceColumns).to.deep.equal([-1, 0, 1, 2]);
      expect(third.outcome === 'write' && third.changes).to.deep.equal([]);
    });
  });

  describe('add-columns (the default)', () => {
    const dataset = cols('id:int64, amount:double');

    it('appends new columns, nullable, in the file\'s order, with their inferred types', () => {
      const evolution = evolve(dataset, [col('zone', 'string'), col('id', 'int64'), col('count', 'int64'), col('flag', 'boolean', { empty: true })], 'add-columns');
      expect(registered(evolution)).to.equal('id:int64, amount:double, zone:string, count:int64, flag:boolean');
      expect(evolution.outcome === 'write' && evolution.sourceColumns).to.deep.equal([1, -1, 0, 2, 3]);
      expect(evolution.outcome === 'write' && evolution.changes.map((c) => c.kind)).to.deep.equal(['column-added', 'column-added', 'column-added']);
    });

    it('a value that fits no registered type: written with the registered types so pass 2 names it, and nothing is registered', () => {
      const evolution = evolve(dataset, [col('id', 'double'), col('amount', 'string'), col('new', 'int64')], 'add-columns');
      expect(evolution.outcome).to.equal('misfit');
      expect(evolution.outcome === 'misfit' && evolution.misfits).to.deep.equal([
        { column: 'id', registered: 'int64', found: 'double' },
        { column: 'amount', registered: 'double', found: 'string' },
      ]);
      expect(written(evolution)).to.equal('id:int64, amount:double, new:int64');
    });
  });

  describe('widen', () => {
    it('int64 → double, date → timestamp, anything else → string; registered for later files', () => {
      const evolution = evolve(cols('n:int64, day:date, flag:boolean, amount:double'), [col('n', 'double'), col('day', 'timestamp'), col('flag', 'int64'), col('amount', 'string')], 'widen');
      expect(registered(evolution)).to.equal('n:double, day:timestamp, flag:string, amount:string');
      expect(written(evolution)).to.equal('n:double, day:timestamp, flag:string, amount:string');
      expect(evolution.outcome === 'write' && evolution.changes).to.deep.equal([
        { kind: 'type-widened', column: 'n', from: 'int64', to: 'double' },
        { kind: 'type-widened', column: 'day', from: 'date', to: 'timestamp' },
        { kind: 'type-widened', column: 'flag', from: 'boolean', to: 'string' },
        { kind: 'type-widened', column: 'amount', from: 'double', to: 'string' },
      ]);
    });

    it('never narrows: values that fit keep the registered type, an empty column widens nothing', () => {
      const evolution = evolve(cols('a:string, b:double, c:int64'), [col('a', 'int64'), col('b', 'int64'), col('c', 'string', { empty: true })], 'widen');
      expect(registered(evolution)).to.equal('a:string, b:double, c:int64');
      expect(evolution.outcome === 'write' && evolution.changes).to.deep.equal([]);
    });

    it('also adds columns', () => {
      expect(registered(evolve(cols('a:int64'), [col('a', 'int64'), col('b', 'date')], 'widen'))).to.equal('a:int64, b:date');
    });

    it('in any order of the same files, every column ends with the same type (the join)', () => {
      const random = seededRandom(7);
      const names = ['a', 'b', 'c'];
      for (let trial = 0; trial < 100; trial++) {
        const files = Array.from({ length: 4 }, () =>
          names.filter(() => random() < 0.7).map((name) => col(name, COLUMN_TYPES[Math.floor(random() * COLUMN_TYPES.length)]!, { empty: random() < 0.2 })),
        ).filter((file) => file.length > 0);
        const finalTypes = (order: FileColumn[][]) => {
          let current: Column[] | undefined;
          for (const file of order) {
            const evolution = evolve(current, file, 'widen');
            if (evolution.outcome !== 'write') throw new Error(evolution.outcome);
            current = evolution.registered;
          }
          return Object.fromEntries((current ?? []).map((c) => [c.name, c.type]));
        };
        // An all-empty column's type (string) only counts when it registers the column; compare
        // orders that agree on which file introduces each column.
        const forward = finalTypes(files);
        const backward = finalTypes([...files].reverse());
        for (const name of Object.keys(forward)) {
          const everyValued = files.every((file) => file.every((c) => c.name !== name || !c.empty));
          if (everyValued) expect(backward[name], `${name} in ${JSON.stringify(files)}`).to.equal(forward[name]);
        }
      }
    });
  });

  describe('strict', () => {
    const dataset = cols('id:int64, amount:double, note:string');

    it('a new column refuses the file, naming it', () => {
      const evolution = evolve(dataset, [col('id', 'int64'), col('amount', 'double'), col('note', 'int64'), col('region', 'string')], 'strict');
      expect(evolution).to.deep.include({ outcome: 'refuse', column: 'region' });
      expect(evolution.outcome === 'refuse' && evolution.reason).to.match(/"region" is not registered/);
    });

    it('a missing column refuses the file, naming it and its type', () => {
      const evolution = evolve(dataset, [col('amount', 'double'), col('note', 'string')], 'strict');
      expect(evolution).to.deep.include({ outcome: 'refuse', column: 'id' });
      expect(evolution.outcome === 'refuse' && evolution.reason).to.match(/no column "id" \(registered as int64\)/);
    });

    it('values that fit are written with the registered types; a value that does not is a misfit', () => {
      expect(written(evolve(dataset, [col('id', 'int64'), col('amount', 'int64'), col('note', 'date')], 'strict'))).to.equal('id:int64, amount:double, note:string');
      expect(evolve(dataset, [col('id', 'string'), col('amount', 'double'), col('note', 'string')], 'strict').outcome).to.equal('misfit');
    });
  });

  describe('SCHEMA_MAP pins win', () => {
    for (const mode of ['add-columns', 'widen', 'strict'] as EvolutionMode[]) {
      it(`under ${mode}: a pinned type is written and registered over the registered one`, () => {
        const evolution = evolve(cols('id:int64, code:int64'), [col('id', 'int64'), col('code', 'string', { pinned: true })], mode);
        expect(written(evolution)).to.equal('id:int64, code:string');
        expect(registered(evolution)).to.equal('id:int64, code:string');
        expect(evolution.outcome === 'write' && evolution.changes).to.deep.equal([{ kind: 'type-pinned', column: 'code', from: 'int64', to: 'string' }]);
      });
    }

    it('a pin that agrees with the registry changes nothing; a pinned new column registers with its pin', () => {
      const evolution = evolve(cols('code:string'), [col('code', 'string', { pinned: true }), col('day', 'date', { pinned: true })], 'add-columns');
      expect(evolution.outcome === 'write' && evolution.changes).to.deep.equal([{ kind: 'column-added', column: 'day', type: 'date' }]);
    });

    it('a pinned column is not a misfit: its values are checked against the pin by pass 2', () => {
      const evolution = evolve(cols('code:int64, n:int64'), [col('code', 'int64', { pinned: true }), col('n', 'double')], 'add-columns');
      expect(evolution.outcome).to.equal('misfit');
      expect(evolution.outcome === 'misfit' && evolution.misfits.map((m) => m.column)).to.deep.equal(['n']);
    });
  });
});
