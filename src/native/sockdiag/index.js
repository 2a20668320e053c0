'use strict';
// The compiled addon, or null where it could not be built (the caller then
// reads /proc/net/tcp instead).
let addon = null;
try {
  addon = require('./build/Release/sockdiag.node');
} catch {
  addon = null;
}
module.exports = addon;
