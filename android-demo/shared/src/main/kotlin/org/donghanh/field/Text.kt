package org.donghanh.field

import uniffi.donghanh.AttendanceStatus
import uniffi.donghanh.BenefitKind
import uniffi.donghanh.DonghanhException
import uniffi.donghanh.RiskSign
import uniffi.donghanh.Role
import uniffi.donghanh.Service
import uniffi.donghanh.SessionKind
import uniffi.donghanh.SessionStatus
import uniffi.donghanh.TestKind
import uniffi.donghanh.TestMethod
import uniffi.donghanh.TestResult
import uniffi.donghanh.VisitMode

/** The language a field user chose: Vietnamese first, English second. */
enum class Lang { VI, EN }

/**
 * One piece of user-visible text in both languages. Every string a field user reads goes
 * through this type, so a screen can never show one language only. `toString` gives both,
 * Vietnamese first (`lỗi | error`), which is what the tests and the README print.
 */
data class Text(val vi: String, val en: String) {
    init {
        require(vi.isNotBlank() && en.isNotBlank()) { "a text needs both languages" }
    }

    operator fun get(lang: Lang): String = if (lang == Lang.VI) vi else en

    override fun toString(): String = "$vi | $en"
}

/**
 * The app's texts. Messages never quote what the user typed, nor a name, nor a note: an
 * error may end up on a screenshot sent to a help desk.
 */
object T {
    // Enrolment and unlocking.
    val enrollTitle = Text("Đăng ký máy", "Enrol this phone")
    val serverLabel = Text("Địa chỉ máy chủ", "Server address")
    val usernameLabel = Text("Tên đăng nhập", "Username")
    val passwordLabel = Text("Mật khẩu", "Password")
    val pinLabel = Text("Mã PIN (6–12 chữ số)", "PIN (6–12 digits)")
    val pinConfirmLabel = Text("Nhập lại mã PIN", "PIN again")
    val unlockTitle = Text("Mở khóa", "Unlock")
    val lockedByUser = Text("Đã khóa máy.", "The app is locked.")
    val sessionExpired = Text(
        "Phiên làm việc đã hết hạn do không thao tác. Nhập mã PIN để tiếp tục.",
        "Your session expired after a period of inactivity. Enter your PIN to continue.",
    )

    // Field messages.
    val required = Text("Không được để trống.", "Required.")
    val serverInvalid = Text(
        "Địa chỉ phải bắt đầu bằng https:// (hoặc http:// khi thử nghiệm).",
        "The address must start with https:// (or http:// for testing).",
    )
    val pinDigits = Text("Mã PIN gồm 6 đến 12 chữ số.", "The PIN has 6 to 12 digits.")
    val pinMismatch = Text("Hai mã PIN không khớp.", "The two PINs differ.")
    fun tooLong(max: Int) = Text("Quá dài (tối đa $max ký tự).", "Too long (at most $max characters).")
    val dayInvalid = Text("Ngày không hợp lệ (năm-tháng-ngày, ví dụ 2026-11-20).",
        "Not a valid date (year-month-day, e.g. 2026-11-20).")
    val dayInPast = Text("Ngày này đã qua.", "This day has passed.")
    val dayInFuture = Text("Không được là ngày trong tương lai.", "Cannot be a future day.")
    val timeInvalid = Text("Giờ không hợp lệ (giờ:phút, ví dụ 09:30).", "Not a valid time (hour:minute, e.g. 09:30).")
    val amountInvalid = Text("Số tiền là số nguyên không âm (đồng).", "The amount is a whole number of đồng, not negative.")
    val amountTooLarge = Text("Số tiền quá lớn.", "The amount is too large.")
    val countInvalid = Text("Số người từ 0 đến 1.000.", "A number from 0 to 1,000.")
    val chooseOne = Text("Hãy chọn một mục.", "Choose one.")
    val nothingToSave = Text("Chưa đánh dấu ai tham dự.", "No one is marked as attending.")
    val noPoint = Text(
        "Chưa biết điểm tư vấn của bạn: hãy đồng bộ khi có mạng.",
        "Your community point is not known yet: sync when online.",
    )
    val saved = Text("Đã lưu trên máy; sẽ gửi khi đồng bộ.", "Saved on this phone; sent at the next sync.")

    // Sync.
    val syncNever = Text("Chưa đồng bộ lần nào.", "Never synced.")
    fun syncedAgo(minutes: Long): Text = when {
        minutes < 1 -> Text("Đồng bộ vừa xong.", "Synced just now.")
        minutes < 60 -> Text("Đồng bộ $minutes phút trước.", "Synced $minutes min ago.")
        minutes < 48 * 60 -> Text("Đồng bộ ${minutes / 60} giờ trước.", "Synced ${minutes / 60} h ago.")
        else -> Text("Đồng bộ ${minutes / (24 * 60)} ngày trước.", "Synced ${minutes / (24 * 60)} days ago.")
    }
    fun pending(n: Long) = Text("$n thay đổi chờ gửi", "$n changes waiting to be sent")
    val syncing = Text("Đang đồng bộ…", "Syncing…")
    fun phase(p: uniffi.donghanh.SyncPhase) = when (p) {
        uniffi.donghanh.SyncPhase.PUSHING -> Text("Đang gửi thay đổi…", "Sending changes…")
        uniffi.donghanh.SyncPhase.PULLING -> Text("Đang nhận thay đổi…", "Receiving changes…")
        uniffi.donghanh.SyncPhase.BOOTSTRAPPING -> Text("Đang tải hồ sơ mới…", "Downloading new cases…")
        uniffi.donghanh.SyncPhase.PURGING -> Text("Đang gỡ hồ sơ không còn giao…", "Removing cases no longer assigned…")
        uniffi.donghanh.SyncPhase.DONE -> Text("Đồng bộ xong.", "Sync finished.")
    }
    fun syncDone(pushed: Long, pulled: Long, rejected: Long) = Text(
        "Đã gửi $pushed, nhận $pulled, bị từ chối $rejected.",
        "Sent $pushed, received $pulled, refused $rejected.",
    )
    fun offlineDays(days: Long) = Text(
        "Chưa đồng bộ $days ngày. Dữ liệu vẫn an toàn trên máy; hãy đồng bộ khi có mạng.",
        "Not synced for $days days. Your data is safe on this phone; sync when you have a connection.",
    )
    fun leaseEnding(days: Long) = Text(
        "Cần đồng bộ trong $days ngày tới, nếu không máy sẽ tự xóa dữ liệu để bảo vệ hồ sơ.",
        "Sync within $days days, or this phone will erase its data to protect the records.",
    )
    fun casesRemoved(n: Int) = Text(
        "$n hồ sơ đã được gỡ khỏi máy này (đã chuyển cho người khác hoặc đã kết thúc).",
        "$n cases were removed from this phone (reassigned or ended).",
    )
    val otherScopeRemoved = Text("Một phần dữ liệu không còn được giao đã được gỡ khỏi máy.",
        "Data no longer assigned to you was removed from this phone.")
    val wipedNotice = Text(
        "Máy này đã bị thu hồi và toàn bộ dữ liệu đã được xóa. Hãy liên hệ quản trị viên để đăng ký lại.",
        "This phone was revoked and all its data erased. Contact your administrator to enrol again.",
    )
    fun rejectedChange(kind: String, code: String) = Text(
        "Máy chủ từ chối một thay đổi (${kindVi(kind)}): ${codeVi(code)}",
        "The server refused a change (${kindEn(kind)}): ${codeEn(code)}",
    )

    // Volunteer.
    val todayTitle = Text("Hôm nay", "Today")
    val overdue = Text("Quá hạn", "Overdue")
    val dueToday = Text("Đến hạn hôm nay", "Due today")
    val upcoming = Text("Sắp tới", "Coming up")
    val toVisit = Text("Cần thăm", "To visit")
    val neverVisited = Text("chưa thăm lần nào", "never visited")
    fun lastVisit(day: String) = Text("thăm lần cuối $day", "last visited $day")
    fun visitDue(day: String) = Text("hẹn thăm $day", "visit due $day")
    val myPeople = Text("Người tôi giúp đỡ", "My people")
    val noMatch = Text("Không tìm thấy ai.", "No one found.")
    val personTitle = Text("Hồ sơ", "Case")
    fun plannedEnd(day: String?) = if (day == null) Text("chưa xác định ngày kết thúc", "planned end not known")
        else Text("dự kiến kết thúc $day", "planned end $day")
    val recordVisit = Text("Ghi nhận chuyến thăm", "Record a visit")
    val observationsLabel = Text("Quan sát", "Observations")
    val nextVisitLabel = Text("Hẹn lần thăm tới", "Next visit due")
    val relapseSuspectedLabel = Text("Nghi tái sử dụng", "Drug use suspected")
    val drugTestTitle = Text("Kết quả xét nghiệm", "Drug test result")
    val supportTitle = Text("Hỗ trợ đã trao", "Support given")
    val amountLabel = Text("Số tiền (đồng)", "Amount (VND)")
    val dayLabel = Text("Ngày", "Day")
    val noteLabel = Text("Ghi chú", "Note")

    // Counsellor.
    val sessionsTitle = Text("Buổi sinh hoạt của điểm tư vấn", "Sessions of my community point")
    val planSession = Text("Lên lịch buổi", "Plan a session")
    val topicLabel = Text("Chủ đề", "Topic")
    val timeLabel = Text("Giờ", "Time")
    val attendanceTitle = Text("Điểm danh", "Attendance")
    val walkInsLabel = Text("Người tham dự không ghi danh", "Anonymous walk-ins")
    fun attendanceCount(people: Int, walkIns: Int) = Text(
        "$people người có tên, $walkIns người không ghi danh: ${people + walkIns} lượt",
        "$people named, $walkIns walk-ins: ${people + walkIns} attendances",
    )
    val counsellingNote = Text("Ghi chú tư vấn cá nhân", "Individual counselling note")
    val counsellingTopic = Text("Tư vấn cá nhân", "Individual counselling")

    // Supervisor.
    val caseloadTitle = Text("Hồ sơ của xã", "The commune's caseload")
    val reassignTitle = Text("Chuyển hồ sơ", "Reassign a case")
    val volunteerLabel = Text("Tình nguyện viên", "Volunteer")
    val taskTitle = Text("Thêm việc cần làm", "Add a follow-up task")
    val reasonLabel = Text("Lý do", "Reason")
    val dueLabel = Text("Hạn", "Due")
    val supervisionTitle = Text("Ghi chú giám sát", "Supervision note")
    val conflictsTitle = Text("Xung đột cần xử lý", "Conflicts to resolve")
    val noConflicts = Text("Không có xung đột.", "No conflicts.")
    val monthTitle = Text("Tháng này của xã", "The commune's month")
    val conflictsNeedNetwork = Text("Cần có mạng để xem xung đột.", "Conflicts need a connection.")

    val roleMissing = Text("Vai trò của tài khoản này không dùng ứng dụng hiện trường.",
        "This account's role does not use the field app.")

    fun role(r: Role) = when (r) {
        Role.VOLUNTEER -> Text("Tình nguyện viên", "Volunteer")
        Role.COUNSELLOR -> Text("Tư vấn viên", "Counsellor")
        Role.SUPERVISOR -> Text("Giám sát viên", "Supervisor")
        Role.OFFICER -> Text("Cán bộ tỉnh", "Province officer")
        Role.ADMIN -> Text("Quản trị viên", "Administrator")
    }

    fun mode(m: VisitMode) = when (m) {
        VisitMode.HOME -> Text("Tại nhà", "At home")
        VisitMode.PHONE -> Text("Qua điện thoại", "By phone")
        VisitMode.AT_POINT -> Text("Tại điểm tư vấn", "At the community point")
    }

    fun risk(r: RiskSign) = when (r) {
        RiskSign.SIGNS_OF_USE -> Text("Dấu hiệu sử dụng ma túy", "Signs of drug use")
        RiskSign.WITHDRAWAL_SYMPTOMS -> Text("Triệu chứng cai", "Withdrawal symptoms")
        RiskSign.CONTACT_WITH_USERS -> Text("Tiếp xúc người sử dụng ma túy", "Contact with people who use drugs")
        RiskSign.FAMILY_CONFLICT -> Text("Mâu thuẫn gia đình", "Family conflict")
        RiskSign.UNEMPLOYMENT -> Text("Không có việc làm", "No job or income")
        RiskSign.MENTAL_DISTRESS -> Text("Căng thẳng tâm lý", "Mental distress")
        RiskSign.HEALTH_PROBLEM -> Text("Vấn đề sức khỏe", "Health problem")
        RiskSign.MISSED_APPOINTMENTS -> Text("Bỏ hẹn, bỏ xét nghiệm", "Missed appointments or tests")
        RiskSign.AWAY_FROM_HOME -> Text("Thường xuyên vắng nhà", "Often away from home")
    }

    fun service(s: Service) = when (s) {
        Service.COUNSELLING -> Text("Tư vấn", "Counselling")
        Service.HARM_REDUCTION -> Text("Giảm hại", "Harm reduction")
        Service.TREATMENT_SUPPORT -> Text("Hỗ trợ điều trị", "Treatment support")
        Service.PAPERS_HELP -> Text("Hỗ trợ giấy tờ", "Help with papers")
        Service.VOCATIONAL_COUNSELLING -> Text("Tư vấn học nghề", "Vocational counselling")
        Service.JOB_SEARCH -> Text("Tìm việc làm", "Job search")
        Service.LOAN_SUPPORT -> Text("Hỗ trợ vay vốn", "Loan support")
        Service.SCHOOLING_SUPPORT -> Text("Hỗ trợ đi học", "Schooling support")
        Service.FAMILY_SUPPORT -> Text("Hỗ trợ gia đình", "Family support")
        Service.HEALTH_EDUCATION -> Text("Giáo dục sức khỏe", "Health education")
    }

    fun result(r: TestResult) = when (r) {
        TestResult.NEGATIVE -> Text("Âm tính", "Negative")
        TestResult.POSITIVE -> Text("Dương tính (chưa phải tái nghiện)", "Positive (not a relapse determination)")
        TestResult.INVALID -> Text("Không hợp lệ", "Invalid")
    }

    fun testKind(k: TestKind) = when (k) {
        TestKind.PERIODIC -> Text("Định kỳ", "Periodic")
        TestKind.SURPRISE -> Text("Đột xuất", "Surprise")
    }

    fun method(m: TestMethod) = when (m) {
        TestMethod.URINE_RAPID -> Text("Test nhanh nước tiểu", "Rapid urine test")
        TestMethod.SALIVA -> Text("Nước bọt", "Saliva")
        TestMethod.URINE_LAB -> Text("Nước tiểu (phòng xét nghiệm)", "Urine (laboratory)")
        TestMethod.BLOOD -> Text("Máu", "Blood")
        TestMethod.HAIR -> Text("Tóc", "Hair")
    }

    fun benefit(b: BenefitKind) = when (b) {
        BenefitKind.VOCATIONAL_TRAINING -> Text("Dạy nghề", "Vocational training")
        BenefitKind.JOB_REFERRAL -> Text("Giới thiệu việc làm", "Job referral")
        BenefitKind.LOAN -> Text("Vay vốn", "Loan")
        BenefitKind.CASH_SUPPORT -> Text("Trợ cấp tiền mặt", "Cash support")
        BenefitKind.SCHOOLING -> Text("Hỗ trợ đi học", "Schooling")
        BenefitKind.PAPERS_HELP -> Text("Hỗ trợ giấy tờ", "Help with papers")
    }

    fun sessionKind(k: SessionKind) = when (k) {
        SessionKind.INDIVIDUAL -> Text("Tư vấn cá nhân", "Individual")
        SessionKind.GROUP -> Text("Tư vấn nhóm", "Group")
        SessionKind.CLUB -> Text("Sinh hoạt câu lạc bộ", "Club")
        SessionKind.TRAINING -> Text("Tập huấn", "Training")
    }

    fun sessionStatus(s: SessionStatus) = when (s) {
        SessionStatus.PLANNED -> Text("Dự kiến", "Planned")
        SessionStatus.HELD -> Text("Đã tổ chức", "Held")
        SessionStatus.CANCELLED -> Text("Đã hủy", "Cancelled")
    }

    fun attendance(s: AttendanceStatus) = when (s) {
        AttendanceStatus.PRESENT -> Text("Có mặt", "Present")
        AttendanceStatus.LATE -> Text("Đến muộn", "Late")
        AttendanceStatus.LEFT_EARLY -> Text("Về sớm", "Left early")
    }

    fun episodeKind(k: uniffi.donghanh.EpisodeKind) = when (k) {
        uniffi.donghanh.EpisodeKind.DRUG_USER_MANAGEMENT -> Text("Quản lý người sử dụng trái phép chất ma túy", "Drug-user management")
        uniffi.donghanh.EpisodeKind.POST_REHAB -> Text("Quản lý sau cai nghiện", "Post-rehab management")
        uniffi.donghanh.EpisodeKind.VOLUNTARY_HOME_REHAB -> Text("Cai nghiện tự nguyện tại gia đình", "Voluntary rehab at home")
        uniffi.donghanh.EpisodeKind.VOLUNTARY_COMMUNITY_REHAB -> Text("Cai nghiện tự nguyện tại cộng đồng", "Voluntary rehab in the community")
        uniffi.donghanh.EpisodeKind.OST -> Text("Điều trị thay thế (Methadone)", "Opioid substitution therapy")
    }

    fun episodeStatus(code: String) = when (code) {
        "draft" -> Text("Bản nháp", "Draft")
        "proposed" -> Text("Đã đề nghị", "Proposed")
        "active" -> Text("Đang quản lý", "Under management")
        "completed" -> Text("Đã hoàn thành", "Completed")
        "terminated" -> Text("Đã chấm dứt", "Terminated")
        else -> Text("Trạng thái khác", "Other status")
    }

    fun kindVi(kind: String) = KINDS[kind]?.vi ?: "bản ghi"
    fun kindEn(kind: String) = KINDS[kind]?.en ?: "record"
    private val KINDS = mapOf(
        "person" to Text("người", "person"), "episode" to Text("hồ sơ quản lý", "episode"),
        "visit" to Text("chuyến thăm", "visit"), "task" to Text("việc cần làm", "task"),
        "drug_test" to Text("xét nghiệm", "drug test"), "session" to Text("buổi sinh hoạt", "session"),
        "attendance" to Text("điểm danh", "attendance"), "assignment" to Text("phân công", "assignment"),
        "support_benefit" to Text("hỗ trợ", "support"), "referral" to Text("chuyển gửi", "referral"),
        "supervision_note" to Text("ghi chú giám sát", "supervision note"),
    )

    private fun codeVi(code: String) = when (code) {
        "forbidden" -> "không có quyền với hồ sơ này"
        "invalid_input" -> "dữ liệu không hợp lệ"
        "not_found" -> "hồ sơ không còn trên máy chủ"
        else -> "lý do khác ($code)"
    }

    private fun codeEn(code: String) = when (code) {
        "forbidden" -> "no permission for this case"
        "invalid_input" -> "invalid data"
        "not_found" -> "the record is no longer on the server"
        else -> "other reason ($code)"
    }
}

/** An amount in đồng as Vietnamese write it: `1.000.000 đ`. */
fun vnd(amount: Long): String =
    "%,d đ".format(java.util.Locale.ROOT, amount).replace(',', '.')

/** Thrown by the app session when the inactivity timeout has passed: the device is locked. */
class SessionExpiredException : Exception("session expired")

/**
 * What the user reads for an error. Never the exception's own text: the core's messages are
 * English only and name fields in code form.
 */
fun errorText(e: Throwable): Text = when (e) {
    is SessionExpiredException -> T.sessionExpired
    is DonghanhException.WrongPin -> Text("Sai mã PIN.", "Wrong PIN.")
    is DonghanhException.WeakPin -> Text("Mã PIN phải có từ ${e.min} đến ${e.max} ký tự.",
        "The PIN must have ${e.min} to ${e.max} characters.")
    is DonghanhException.LeaseExpired -> Text(
        "Phiên đăng ký đã hết hạn vì máy không đồng bộ quá lâu; dữ liệu trên máy đã được xóa để bảo vệ hồ sơ. Hãy đăng ký lại.",
        "The enrolment expired because the phone did not sync for too long; its data was erased to protect the records. Enrol again.",
    )
    is DonghanhException.Revoked, is DonghanhException.Wiped -> T.wipedNotice
    is DonghanhException.Locked -> T.lockedByUser
    is DonghanhException.NoStore -> Text("Máy chưa được đăng ký.", "This phone is not enrolled yet.")
    is DonghanhException.NotEnrolled -> Text("Máy chưa đăng ký với máy chủ.", "This phone is not enrolled with a server.")
    is DonghanhException.Network -> Text(
        "Không kết nối được máy chủ. Mọi thay đổi vẫn được lưu trên máy.",
        "Cannot reach the server. Every change is still saved on this phone.",
    )
    is DonghanhException.Server -> when (e.code) {
        "unauthorised" -> Text(
            "Sai tên đăng nhập hoặc mật khẩu, hoặc phiên đăng nhập đã hết hạn.",
            "Wrong username or password, or the sign-in has expired.",
        )
        "rate_limited" -> Text("Đăng nhập sai quá nhiều lần; hãy thử lại sau 15 phút.",
            "Too many failed sign-ins; try again in 15 minutes.")
        "forbidden" -> Text("Tài khoản này không được làm việc này.", "This account may not do this.")
        else -> Text("Máy chủ từ chối yêu cầu (${e.code}).", "The server refused the request (${e.code}).")
    }
    is DonghanhException.Forbidden -> Text("Tài khoản này không được làm việc này.", "This account may not do this.")
    is DonghanhException.UnknownUser -> Text("Không có người dùng này trong danh bạ; hãy đồng bộ.",
        "No such user in the directory; sync first.")
    is DonghanhException.NotFound -> Text("Không còn ${T.kindVi(e.kind)} này trên máy.",
        "This ${T.kindEn(e.kind)} is no longer on this phone.")
    is DonghanhException.AlreadyExists -> Text("Đã ghi nhận rồi.", "Already recorded.")
    is DonghanhException.InvalidTransition -> Text(
        "Không thể chuyển từ \"${T.episodeStatus(e.fromStatus).vi}\" sang \"${T.episodeStatus(e.toStatus).vi}\".",
        "Cannot change from \"${T.episodeStatus(e.fromStatus).en}\" to \"${T.episodeStatus(e.toStatus).en}\".",
    )
    is DonghanhException.InvalidInput -> Text("Dữ liệu không hợp lệ; hãy kiểm tra lại.", "Invalid input; please check.")
    is DonghanhException.KeyMissing, is DonghanhException.KeyRejected -> Text(
        "Khóa bảo mật của máy không còn khớp với dữ liệu. Hãy liên hệ quản trị viên.",
        "The phone's security key no longer matches its data. Contact your administrator.",
    )
    is DonghanhException.KeyStoreUnavailable -> Text("Kho khóa của máy đang bận; hãy thử lại.",
        "The phone's key store is unavailable; try again.")
    is DonghanhException.DiskFull -> Text("Bộ nhớ máy đã đầy; chưa lưu được gì.", "The phone's storage is full; nothing was saved.")
    is DonghanhException.Busy -> Text("Dữ liệu đang bận; hãy thử lại.", "The data is busy; try again.")
    is DonghanhException.Corrupt -> Text("Dữ liệu trên máy bị hỏng; tệp đã được để riêng. Hãy đăng ký lại.",
        "The data on this phone is damaged; the file was set aside. Enrol again.")
    is DonghanhException.NewerVersion -> Text("Dữ liệu do phiên bản mới hơn tạo ra; hãy cập nhật ứng dụng.",
        "The data was written by a newer version; update the app.")
    is DonghanhException.Storage -> Text("Lỗi lưu trữ trên máy; hãy thử lại.", "Storage error on this phone; try again.")
    else -> Text("Đã có lỗi; hãy thử lại.", "Something went wrong; try again.")
}
