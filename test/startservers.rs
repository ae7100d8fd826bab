//! The service table and its lifecycle. OWNER: helper "harness".
