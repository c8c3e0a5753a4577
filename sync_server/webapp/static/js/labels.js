// The app speaks Vietnamese: collections, fields and enum values by their names on the wire.

export const COLLECTIONS = {
  premises: "Cơ sở", checks: "Kiểm tra", violations: "Vi phạm", patrols: "Tuần tra",
  tips: "Tin báo", safety_groups: "Tổ liên gia", fire_points: "Điểm chữa cháy", targets: "Chỉ tiêu",
};

export const FIELDS = {
  name: "Tên", kind: "Loại", address: "Địa chỉ", owner_name: "Chủ cơ sở", owner_phone: "Số điện thoại",
  rooms: "Số phòng", lat: "Vĩ độ", lon: "Kinh độ", tags: "Nhãn", active: "Đang hoạt động",
  premises_id: "Cơ sở", started_at: "Bắt đầu", finished_at: "Kết thúc", ended_at: "Kết thúc", team_id: "Tổ",
  officer_id: "Cán bộ", result: "Kết quả", residents_present: "Số người có mặt",
  unregistered_residents: "Chưa đăng ký tạm trú", notes: "Ghi chú", photos: "Ảnh", officers: "Cán bộ tham gia",
  check_id: "Lần kiểm tra", category: "Lĩnh vực", status: "Trạng thái", description: "Mô tả",
  fine_vnd: "Tiền phạt (đồng)", record_no: "Số biên bản", route: "Lộ trình",
  received_at: "Thời điểm nhận", channel: "Kênh tiếp nhận", summary: "Nội dung",
  leader_name: "Tổ trưởng", households: "Số hộ", established_on: "Ngày thành lập", equipment: "Trang thiết bị",
  metric: "Chỉ số", period: "Kỳ", target: "Chỉ tiêu", ward_id: "Phường",
};

export const VALUES = {
  boarding_house: "Nhà trọ", lodging: "Cơ sở lưu trú", karaoke: "Karaoke", bar: "Quán bar",
  apartment_block: "Chung cư", shop: "Cửa hàng", other: "Khác",
  residence: "Cư trú", fire_safety: "Phòng cháy chữa cháy", public_order: "Trật tự công cộng",
  business_conditions: "Điều kiện kinh doanh",
  ok: "Không vi phạm", violations_found: "Có vi phạm", not_reachable: "Không gặp được",
  residence_registration: "Đăng ký cư trú", traffic: "Giao thông", drugs: "Ma túy", business_license: "Giấy phép kinh doanh",
  open: "Mới lập", notified: "Đã thông báo", fined: "Đã xử phạt", resolved: "Đã khắc phục", dismissed: "Hủy bỏ",
  zalo: "Zalo", phone: "Điện thoại", in_person: "Trực tiếp", hotline: "Đường dây nóng",
  new: "Mới", verifying: "Đang xác minh", actioned: "Đã xử lý", closed: "Đã đóng",
  security: "An ninh trật tự",
};

export const ERRORS = {
  required: "Bắt buộc", enum: "Giá trị không hợp lệ", integer: "Cần một số nguyên", number: "Cần một số",
  min: "Nhỏ hơn mức cho phép", max: "Lớn hơn mức cho phép", too_long: "Quá dài", too_short: "Không được để trống",
  pattern: "Sai định dạng", datetime: "Sai thời gian", date: "Sai ngày", invalid: "Không hợp lệ",
};

export const label = (name) => FIELDS[name] || name;
export const valueLabel = (value) => VALUES[value] || value;
