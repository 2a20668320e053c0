/**
 * The sections of `npm run bench`, in the order they run and are reported.
 * A new section is a module beside these that exports a `Section`, and one
 * line here.
 */
import type { Section } from '../context.js';
import { concurrentSessions } from './concurrent.js';
import { largeFile } from './large.js';
import { slowReader } from './slowReader.js';
import { smallFiles } from './smallFiles.js';

export const SECTIONS: readonly Section[] = [largeFile, smallFiles, concurrentSessions, slowReader];
