//! How the services' errors become the front door's [`RoomError`]: one
//! place that says which failure is whose fault (not found, conflict, bad
//! request, failed).

use super::studio::SceneError;
use super::{ControlError, RoomError};
use crate::accounts::AccountError;
use crate::scene::{RunError, StartError};
use crate::studio::StoreError;

impl From<AccountError> for RoomError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(_) => RoomError::BadRequest(e.to_string()),
            AccountError::NotFound(_) => RoomError::NotFound(e.to_string()),
            AccountError::Conflict(_) => RoomError::Conflict(e.to_string()),
            AccountError::File(_) => RoomError::Failed(e.to_string()),
        }
    }
}

impl From<StoreError> for RoomError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadName(_) | StoreError::TooLarge(_) => {
                RoomError::BadRequest(e.to_string())
            }
            StoreError::NotFound(_) => RoomError::NotFound(e.to_string()),
            StoreError::Conflict(_) => RoomError::Conflict(e.to_string()),
            StoreError::Io(_) => RoomError::Failed(e.to_string()),
        }
    }
}

impl From<SceneError> for RoomError {
    fn from(e: SceneError) -> Self {
        match e {
            SceneError::Store(e) => e.into(),
            SceneError::Invalid { errors, warnings } => RoomError::Invalid { errors, warnings },
            SceneError::Reload(d) => RoomError::Reload(d),
            SceneError::Failed(_) => RoomError::Failed(e.to_string()),
        }
    }
}

impl From<StartError> for RoomError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::NotFound(_) => RoomError::NotFound(e.to_string()),
            StartError::AlreadyRunning(_) => RoomError::Conflict(e.to_string()),
        }
    }
}

impl From<RunError> for RoomError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NotFound(_) => RoomError::NotFound(e.to_string()),
            RunError::AlreadyRunning(_) | RunError::Busy => RoomError::Conflict(e.to_string()),
        }
    }
}

impl From<ControlError> for RoomError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::UnknownChannel(_) | ControlError::NoDevice(_) => {
                RoomError::NotFound(e.to_string())
            }
            ControlError::BadMessage(_) => RoomError::BadRequest(e.to_string()),
            ControlError::Send(_) | ControlError::TooMany(_) => RoomError::Conflict(e.to_string()),
        }
    }
}
