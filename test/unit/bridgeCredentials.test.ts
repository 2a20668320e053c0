import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkFtpLogin, LoginFailures } from '../../src/bridge/credentials.js';

describe('checkFtpLogin', () => {
  const account = { user: 'deploy', password: 'correct horse' };
  const cases: Array<{ title: string; user: string; password: string; expected: boolean }> = [
    { title: 'the right login', user: 'deploy', password: 'correct horse', expected: true },
    { title: 'a wrong password', user: 'deploy', password: 'correct hors', expected: false },
    { title: 'a longer password with the right prefix', user: 'deploy', password: 'correct horse battery', expected: false },
    { title: 'an empty password', user: 'deploy', password: '', expected: false },
    { title: 'the wrong user with the right password', user: 'root', password: 'correct horse', expected: false },
    { title: 'user names are case-sensitive', user: 'Deploy', password: 'correct horse', expected: false },
    { title: 'a password with a NUL appended', user: 'deploy', password: 'correct horse\0', expected: false },
  ];
  for (const { title, user, password, expected } of cases) {
    it(title, () => assert.equal(checkFtpLogin(account, user, password), expected));
  }

  it('non-ASCII passwords compare as text', () => {
    assert.equal(checkFtpLogin({ user: 'u', password: 'pässwörd' }, 'u', 'pässwörd'), true);
    assert.equal(checkFtpLogin({ user: 'u', password: 'pässwörd' }, 'u', 'passwort'), false);
  });
});

describe('LoginFailures', () => {
  const policy = { baseDelayMs: 1000, maxDelayMs: 5000, windowMs: 60_000, maxAddresses: 3 };

  it('doubles the delay per failure from one address, up to the cap', () => {
    const failures = new LoginFailures(policy);
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => failures.recordFailure('10.0.0.1', n)), [1000, 2000, 4000, 5000, 5000]);
  });

  it('keeps addresses apart, forgets old failures, and a success resets', () => {
    const failures = new LoginFailures(policy);
    failures.recordFailure('a', 0);
    assert.equal(failures.recordFailure('b', 0), 1000);
    assert.equal(failures.recordFailure('a', 70_000), 1000, 'outside the window');
    failures.recordFailure('a', 70_001);
    failures.recordSuccess('a');
    assert.equal(failures.recordFailure('a', 70_002), 1000);
  });

  it('remembers a bounded number of addresses, dropping the oldest', () => {
    const failures = new LoginFailures(policy);
    failures.recordFailure('a', 0);
    failures.recordFailure('a', 1);
    for (const address of ['b', 'c', 'd']) failures.recordFailure(address, 2);
    assert.equal(failures.recordFailure('a', 3), 1000, 'a was forgotten when d came');
  });
});
