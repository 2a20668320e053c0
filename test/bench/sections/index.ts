/**
 * The sections of `npm run bench`, in the order they run and are reported.
 * A new section is a module beside these that exports a `Section`, and one
 * line here.
 */
import type { Section } from '../context.js';
import { concurrentSessions } from './concurrent.js';
import { delayLine } from './delay.js';
import { ftps } from './ftps.js';
import { largeFile } from './large.js';
import { lftpMirror } from './mirror.js';
import { manySessions } from './manySessions.js';
import { memory } from './memory.js';
import { slowReader } from './slowReader.js';
import { sftpBridge } from './sftpBridge.js';
import { smallFiles } from './smallFiles.js';

export const SECTIONS: readonly Section[] = [largeFile, smallFiles, concurrentSessions, manySessions, lftpMirror, delayLine, slowReader, ftps, memory, sftpBridge];
