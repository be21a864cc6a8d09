//! The static archive server (issue 3). Placeholder until the server lands.
