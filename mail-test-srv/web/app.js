// mail-test-srv page script (placeholder).
"use strict";
