//! Alarm requests: raise or disarm an alarm for a member, or list them. The alarms are
//! stored in the backend and shared in memory (the NOSPACE check reads them).

use chorus_api::etcdserverpb::{
    alarm_request::AlarmAction, AlarmMember, AlarmRequest, AlarmResponse, AlarmType, ResponseHeader,
};
use parking_lot::RwLock;

use super::chain::Batch;
use super::error::ApplyError;
use super::result::{Applied, ApplyResult};
use crate::alarm::Alarms;

pub fn apply(
    b: &mut Batch<'_, '_, '_>,
    shared: &RwLock<Alarms>,
    ar: AlarmRequest,
) -> Result<ApplyResult, ApplyError> {
    let m = AlarmMember {
        member_id: ar.member_id,
        alarm: ar.alarm,
    };
    let mut store = shared.write();
    let alarms = match AlarmAction::try_from(ar.action) {
        Ok(AlarmAction::Get) => store.get(ar.alarm),
        Ok(AlarmAction::Activate) if ar.alarm != AlarmType::None as i32 => {
            let m = store.activate(b.tx, m)?;
            tracing::warn!(member = %format!("{:x}", m.member_id), alarm = m.alarm, "alarm raised");
            vec![m]
        }
        Ok(AlarmAction::Deactivate) => match store.deactivate(b.tx, m)? {
            Some(m) => {
                tracing::warn!(member = %format!("{:x}", m.member_id), alarm = m.alarm, "alarm disarmed");
                vec![m]
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(Ok(Applied::Alarm(AlarmResponse {
        header: Some(ResponseHeader {
            revision: b.kv.rev(),
            ..Default::default()
        }),
        alarms,
    })))
}
