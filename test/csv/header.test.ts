import { expect } from 'chai';
import { resolveColumnNames } from '../../src/csv/header.js';

describe('resolveColumnNames', () => {
  it('keeps distinct names as written, spaces and unicode included', () => {
    expect(resolveColumnNames(['id', ' Name ', 'prix €'])).to.deep.equal(['id', ' Name ', 'prix €']);
  });

  it('names empty cells column_<n> by 1-based position', () => {
    expect(resolveColumnNames(['', 'a', ''])).to.deep.equal(['column_1', 'a', 'column_3']);
  });

  it('numbers repeated names _2, _3…', () => {
    expect(resolveColumnNames(['x', 'x', 'y', 'x'])).to.deep.equal(['x', 'x_2', 'y', 'x_3']);
  });

  it('never generates a name the header already has', () => {
    expect(resolveColumnNames(['a', 'a', 'a_2'])).to.deep.equal(['a', 'a_3', 'a_2']);
    expect(resolveColumnNames(['a_2', 'a', 'a'])).to.deep.equal(['a_2', 'a', 'a_3']);
  });

  it('lets a written column_<n> keep its name and renames the generated one', () => {
    expect(resolveColumnNames(['', 'column_1'])).to.deep.equal(['column_1_2', 'column_1']);
    expect(resolveColumnNames(['column_2', ''])).to.deep.equal(['column_2', 'column_2_2']);
  });

  it('resolves a header that is all empty or all the same', () => {
    expect(resolveColumnNames(['', '', ''])).to.deep.equal(['column_1', 'column_2', 'column_3']);
    expect(resolveColumnNames(['n', 'n', 'n', 'n_2'])).to.deep.equal(['n', 'n_3', 'n_4', 'n_2']);
  });

  it('returns names that are unique and non-empty', () => {
    const raw = ['a', '', 'a', 'column_2', 'a_2', '', 'a', 'column_2'];
    const names = resolveColumnNames(raw);
    expect(new Set(names).size).to.equal(raw.length);
    expect(names.every((name) => name !== '')).to.equal(true);
  });
});
